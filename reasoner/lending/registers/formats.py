"""Which register a text file is, told from its content: the formats and their field orders.

=================  ==========================================================================
format             how it is recognised
=================  ==========================================================================
``filing``         the HMDA filing format (FFIEC Filing Instructions Guide, 2018 onward): a
                   transmittal sheet line of 15 fields starting ``1|``, then 110-field
                   loan/application lines starting ``2|``, pipe-delimited, no header
``modified``       the Modified LAR (the public per-institution file, 2018 onward): 85
                   pipe-delimited fields in its published order, no header (with its header
                   it is read by name)
``snapshot``       the public LAR (snapshot or Data Browser) without a header: its 99 fields
``header``         any table with a header row naming HMDA fields (Data Browser CSV, snapshot
                   text, a bank's own export); ``derived_*`` columns optional
=================  ==========================================================================

A 2017-or-earlier register (the 39-field LAR after a transmittal sheet of more than 15 fields,
a headerless 39- or 36-field LAR, or a header with ``as_of_year``/``respondent_id``) is refused
with a message naming the year and layout: those registers carry neither debt-to-income nor
combined loan-to-value, which the audit compares applicants on.

Field names are the published Data Browser spellings where the public LAR has the field
(``applicant_race-1``, ``co-applicant_sex``, ``open-end_line_of_credit``), so every format
cleans through the same code; the filing-only fields take names in the same style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reasoner.lending.registers.fields import PUBLISHED_COLUMNS, normalize_name

__all__ = [
    "FILING_LAR_FIELDS",
    "KNOWN_NAMES",
    "MODIFIED_LAR_FIELDS",
    "TRANSMITTAL_FIELDS",
    "RegisterFormat",
    "TransmittalSheet",
    "detect_format",
    "legacy_message",
]

FormatName = Literal["filing", "modified", "snapshot", "header"]


def _numbered(stem: str, count: int = 5) -> tuple[str, ...]:
    return tuple(f"{stem}-{index}" for index in range(1, count + 1))


# Transmittal sheet (FIG 2018 onward, record identifier 1), in published order.
TRANSMITTAL_FIELDS = (
    "record_identifier",
    "institution_name",
    "calendar_year",
    "calendar_quarter",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_street",
    "contact_city",
    "contact_state",
    "contact_zip",
    "agency_code",
    "total_lines",
    "tax_id",
    "lei",
)

# Loan/application register lines of the filing format (record identifier 2), in published order.
FILING_LAR_FIELDS = (
    "record_identifier",
    "lei",
    "uli",
    "application_date",
    "loan_type",
    "loan_purpose",
    "preapproval",
    "construction_method",
    "occupancy_type",
    "loan_amount",
    "action_taken",
    "action_taken_date",
    "street_address",
    "city",
    "state_code",
    "zip_code",
    "county_code",
    "census_tract",
    *_numbered("applicant_ethnicity"),
    "applicant_ethnicity_free_form",
    *_numbered("co-applicant_ethnicity"),
    "co-applicant_ethnicity_free_form",
    "applicant_ethnicity_observed",
    "co-applicant_ethnicity_observed",
    *_numbered("applicant_race"),
    "applicant_race_free_form_american_indian",
    "applicant_race_free_form_asian",
    "applicant_race_free_form_pacific_islander",
    *_numbered("co-applicant_race"),
    "co-applicant_race_free_form_american_indian",
    "co-applicant_race_free_form_asian",
    "co-applicant_race_free_form_pacific_islander",
    "applicant_race_observed",
    "co-applicant_race_observed",
    "applicant_sex",
    "co-applicant_sex",
    "applicant_sex_observed",
    "co-applicant_sex_observed",
    "applicant_age",
    "co-applicant_age",
    "income",
    "purchaser_type",
    "rate_spread",
    "hoepa_status",
    "lien_status",
    "applicant_credit_score",
    "co-applicant_credit_score",
    "applicant_credit_score_type",
    "applicant_credit_score_type_free_form",
    "co-applicant_credit_score_type",
    "co-applicant_credit_score_type_free_form",
    *_numbered("denial_reason", 4),
    "denial_reason_free_form",
    "total_loan_costs",
    "total_points_and_fees",
    "origination_charges",
    "discount_points",
    "lender_credits",
    "interest_rate",
    "prepayment_penalty_term",
    "debt_to_income_ratio",
    "combined_loan_to_value_ratio",
    "loan_term",
    "intro_rate_period",
    "balloon_payment",
    "interest_only_payment",
    "negative_amortization",
    "other_nonamortizing_features",
    "property_value",
    "manufactured_home_secured_property_type",
    "manufactured_home_land_property_interest",
    "total_units",
    "multifamily_affordable_units",
    "submission_of_application",
    "initially_payable_to_institution",
    "nmlsr_identifier",
    *_numbered("aus"),
    "aus_free_form",
    *_numbered("aus_result"),
    "aus_result_free_form",
    "reverse_mortgage",
    "open-end_line_of_credit",
    "business_or_commercial_purpose",
)

# The Modified LAR (2018 onward), in published order: the filing fields less those that could
# identify an applicant (ULI, dates, address, free text, credit scores, NMLSR id, AUS results).
MODIFIED_LAR_FIELDS = (
    "activity_year",
    "lei",
    "loan_type",
    "loan_purpose",
    "preapproval",
    "construction_method",
    "occupancy_type",
    "loan_amount",
    "action_taken",
    "state_code",
    "county_code",
    "census_tract",
    *_numbered("applicant_ethnicity"),
    *_numbered("co-applicant_ethnicity"),
    "applicant_ethnicity_observed",
    "co-applicant_ethnicity_observed",
    *_numbered("applicant_race"),
    *_numbered("co-applicant_race"),
    "applicant_race_observed",
    "co-applicant_race_observed",
    "applicant_sex",
    "co-applicant_sex",
    "applicant_sex_observed",
    "co-applicant_sex_observed",
    "applicant_age",
    "applicant_age_above_62",
    "co-applicant_age",
    "co-applicant_age_above_62",
    "income",
    "purchaser_type",
    "rate_spread",
    "hoepa_status",
    "lien_status",
    "applicant_credit_score_type",
    "co-applicant_credit_score_type",
    *_numbered("denial_reason", 4),
    "total_loan_costs",
    "total_points_and_fees",
    "origination_charges",
    "discount_points",
    "lender_credits",
    "interest_rate",
    "prepayment_penalty_term",
    "debt_to_income_ratio",
    "combined_loan_to_value_ratio",
    "loan_term",
    "intro_rate_period",
    "balloon_payment",
    "interest_only_payment",
    "negative_amortization",
    "other_nonamortizing_features",
    "property_value",
    "manufactured_home_secured_property_type",
    "manufactured_home_land_property_interest",
    "total_units",
    "multifamily_affordable_units",
    "submission_of_application",
    "initially_payable_to_institution",
    *_numbered("aus"),
    "reverse_mortgage",
    "open-end_line_of_credit",
    "business_or_commercial_purpose",
)

# Field counts of the 2017-and-earlier layouts (FFIEC 2017 file specification): the LAR line
# and the Modified LAR line.
LEGACY_LAR_WIDTHS = {39: "loan/application register", 36: "Modified LAR"}
LEGACY_HEADER_NAMES = frozenset({"as_of_year", "respondent_id"})


@dataclass(frozen=True, slots=True)
class TransmittalSheet:
    """The filing's transmittal sheet: who filed, for which year, and whom to ask."""

    institution_name: str
    lei: str
    year: str
    quarter: str
    contact_name: str
    contact_phone: str
    contact_email: str
    agency_code: str
    total_lines: str
    tax_id: str

    def count_mismatch(self, read: int) -> str | None:
        """What to warn of when the sheet declares another number of loan/application lines than
        were read (a truncated or padded file); None when they agree or nothing is declared."""
        declared = self.total_lines.strip()
        if not declared.isdigit() or int(declared) == read:
            return None
        return (
            f"the transmittal sheet declares {int(declared):,} loan/application lines but {read:,} were read: "
            "the file may be truncated or have lines added"
        )

    def describe(self) -> str:
        """One line for the report: institution, LEI, year, contact, declared line count."""
        contact = ", ".join(part for part in (self.contact_name, self.contact_phone, self.contact_email) if part)
        quarter = f" Q{self.quarter}" if self.quarter.strip() else ""
        return (
            f"{self.institution_name} (LEI {self.lei}), HMDA filing for {self.year}{quarter}; "
            f"contact {contact or 'not given'}; {self.total_lines} loan/application lines declared"
        )


@dataclass(frozen=True, slots=True)
class RegisterFormat:
    """How to read a text register: its format, field names (None: the header names them), the
    lines before the first data row, the delimiter, and whether fields may be quoted."""

    name: FormatName
    description: str
    columns: tuple[str, ...] | None
    skip: int
    delimiter: str
    quoted: bool = True
    transmittal: TransmittalSheet | None = None


def detect_format(first: list[str], second: list[str] | None, delimiter: str) -> RegisterFormat:
    """The format of a text register from its first two lines, split into fields.

    Raises ``ValueError`` with the reason (the caller names the file) for a 2017-or-earlier
    register; anything else that is not one of the headerless layouts is read by its header.
    """
    width = len(first)
    names = {normalize_name(name) for name in first}
    if delimiter == "|" and first[0].strip() == "1":
        if width != len(TRANSMITTAL_FIELDS):
            raise ValueError(legacy_message(f"a transmittal sheet of {width} fields (2018 onward: 15)", second))
        sheet = dict(zip(TRANSMITTAL_FIELDS, (field.strip() for field in first), strict=True))
        transmittal = TransmittalSheet(
            institution_name=sheet["institution_name"],
            lei=sheet["lei"].upper(),
            year=sheet["calendar_year"],
            quarter=sheet["calendar_quarter"],
            contact_name=sheet["contact_name"],
            contact_phone=sheet["contact_phone"],
            contact_email=sheet["contact_email"],
            agency_code=sheet["agency_code"],
            total_lines=sheet["total_lines"],
            tax_id=sheet["tax_id"],
        )
        description = "HMDA filing format (transmittal sheet and 110-field loan/application register)"
        return RegisterFormat("filing", description, FILING_LAR_FIELDS, 1, "|", False, transmittal)
    if names & LEGACY_HEADER_NAMES:
        seen = "a header naming 'as_of_year'/'respondent_id' (the 2017-and-earlier public LAR)"
        raise ValueError(legacy_message(seen))
    known = names & KNOWN_NAMES
    if known:
        return RegisterFormat("header", "table with a header row", None, 1, delimiter)
    if width == len(PUBLISHED_COLUMNS):
        return RegisterFormat("snapshot", "public LAR without a header (99 fields)", PUBLISHED_COLUMNS, 0, delimiter)
    if delimiter == "|" and width == len(FILING_LAR_FIELDS) and first[0].strip() == "2":
        description = "HMDA filing format without its transmittal sheet (110-field loan/application register)"
        return RegisterFormat("filing", description, FILING_LAR_FIELDS, 0, "|", False)
    if delimiter == "|" and width == len(MODIFIED_LAR_FIELDS):
        return RegisterFormat("modified", "Modified LAR (85 fields, no header)", MODIFIED_LAR_FIELDS, 0, "|", False)
    if width in LEGACY_LAR_WIDTHS:
        raise ValueError(legacy_message(f"a headerless line of {width} fields (the 2017 {LEGACY_LAR_WIDTHS[width]})"))
    return RegisterFormat("header", "table with a header row", None, 1, delimiter)


def legacy_message(seen: str, second: list[str] | None = None) -> str:
    """Why a 2017-or-earlier register cannot be audited (the caller names the file)."""
    lar = f", then lines of {len(second)} fields" if second else ""
    return (
        f"this looks like a 2017-or-earlier HMDA register ({seen}{lar}); those layouts carry neither "
        "debt-to-income nor combined loan-to-value, which the audit compares applicants on; use a 2018-or-later "
        "register (filing format, Modified LAR, snapshot or Data Browser)"
    )


# Column names (internal spelling) that mark a header row as a register's
KNOWN_NAMES = (
    frozenset(map(normalize_name, PUBLISHED_COLUMNS))
    | frozenset(map(normalize_name, MODIFIED_LAR_FIELDS))
    | {"application_id", "uli", "loan_to_value_ratio"}
)
