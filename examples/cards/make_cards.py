"""Write examples/cards/cards.csv: a credit-card application register with names and ZIP codes and
no race, ethnicity or sex column, from ``reason synth --names`` (seed 7), and cards.truth.csv
(the synthetic issuers' truth: ISSUER-4 denies Asian applicants at odds 2.4 times the others').

    python examples/cards/make_cards.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reasoner.lending.registers.hmda import clean_hmda
from reasoner.lending.synthetic.synth import synthesize

HERE = Path(__file__).parent


def main() -> None:
    raw, truth = synthesize(6000, 6, 7, names=True)
    cleaned = clean_hmda(raw.astype(str), "synthetic").frame
    decision = np.select(
        [cleaned["decision"].eq("approved"), cleaned["decision"].eq("denied")], ["APPROVED", "DECLINED"], "WITHDRAWN"
    )
    issuers = {lei: f"ISSUER-{index + 1}" for index, lei in enumerate(sorted(truth["lei"]))}
    cards = pd.DataFrame(
        {
            "application": [f"C{index:06d}" for index in range(1, len(raw) + 1)],
            "issuer": cleaned["lei"].map(issuers),
            "last_name": raw["applicant_surname"].astype(str),
            "first_name": raw["applicant_first_name"].astype(str),
            "zip": raw["zip_code"].astype(str),
            "annual_income": cleaned["income"].round(0),
            "dti": cleaned["dti"],
            "credit_line": (cleaned["loan_amount"] / 20).round(-2),
            "status": decision,
        }
    )
    cards.to_csv(HERE / "cards.csv", index=False)
    truth.assign(lei=truth["lei"].map(issuers)).to_csv(HERE / "cards.truth.csv", index=False)


if __name__ == "__main__":
    main()
