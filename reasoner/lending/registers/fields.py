"""The public HMDA loan/application register (2018 onward): field names and code values.

Taken from the FFIEC/CFPB "Public HMDA - LAR Data Fields" dictionary, the public LAR
schema, and the Filing Instructions Guide edits that decide when a field is ``NA``:

- V657: ``rate_spread`` is NA or Exempt when ``action_taken`` is 3, 4, 5, 6 or 7.
- V677: ``interest_rate`` is NA or Exempt when ``action_taken`` is 3, 4, 5 or 7.
- V679: ``debt_to_income_ratio`` is NA or Exempt when ``action_taken`` is 4, 5 or 6.
- V681: ``combined_loan_to_value_ratio`` is NA or Exempt when ``action_taken`` is 4, 5 or 6.
- V688: ``property_value`` is NA or Exempt when ``action_taken`` is 4 or 5.

So a denied application (3) keeps its DTI and CLTV but never has pricing fields; only
pricing analyses may require ``rate_spread`` or ``interest_rate``.

Column names are spelled two ways in published files: the Data Browser and the data
dictionary use hyphens (``derived_msa-md``, ``applicant_race-1``,
``co-applicant_race-1``, ``open-end_line_of_credit``), the snapshot files underscores.
``normalize_name`` maps both to the underscore spelling used inside ``reasoner``.
"""

from __future__ import annotations

__all__ = [
    "ACTION_TAKEN",
    "APPROVED_ACTIONS",
    "DENIED_ACTIONS",
    "DERIVED_ETHNICITY",
    "DERIVED_RACE",
    "DERIVED_SEX",
    "DTI_BUCKETS",
    "LIEN_STATUS",
    "LOAN_PURPOSE",
    "LOAN_TYPE",
    "PUBLISHED_COLUMNS",
    "RACE_NOT_AVAILABLE",
    "normalize_name",
]

ACTION_TAKEN = {
    1: "Loan originated",
    2: "Application approved but not accepted",
    3: "Application denied",
    4: "Application withdrawn by applicant",
    5: "File closed for incompleteness",
    6: "Purchased loan",
    7: "Preapproval request denied",
    8: "Preapproval request approved but not accepted",
}
APPROVED_ACTIONS = (1, 2)
DENIED_ACTIONS = (3,)

LOAN_TYPE = {1: "Conventional", 2: "FHA", 3: "VA", 4: "FSA/RHS"}
LOAN_PURPOSE = {
    1: "Home purchase",
    2: "Home improvement",
    31: "Refinancing",
    32: "Cash-out refinancing",
    4: "Other purpose",
    5: "Not applicable",
}
LIEN_STATUS = {1: "Secured by a first lien", 2: "Secured by a subordinate lien"}

DERIVED_RACE = (
    "American Indian or Alaska Native",
    "Asian",
    "Black or African American",
    "Native Hawaiian or Other Pacific Islander",
    "White",
    "2 or more minority races",
    "Joint",
    "Free Form Text Only",
    "Race Not Available",
)
RACE_NOT_AVAILABLE = ("Free Form Text Only", "Race Not Available")
DERIVED_ETHNICITY = (
    "Hispanic or Latino",
    "Not Hispanic or Latino",
    "Joint",
    "Ethnicity Not Available",
    "Free Form Text Only",
)
DERIVED_SEX = ("Male", "Female", "Joint", "Sex Not Available")

# Published DTI strings → the number (percent) used for them. Buckets become their
# midpoint; the open-ended ones are closed at 0 % and 80 % (so '<20%' → 10, '>60%' → 70).
# Exact values 36..49 are published without a bucket (as '36' or, in the dictionary, '36%').
DTI_BUCKETS = {
    "<20%": 10.0,
    "20%-<30%": 25.0,
    "30%-<36%": 33.0,
    "50%-60%": 55.0,
    ">60%": 70.0,
}

# The 99 columns of the public LAR (2018 onward), in published order, spelled as in the
# data dictionary and the Data Browser CSV. Before 2019 the Data Browser called the
# CLTV column 'loan_to_value_ratio'.
PUBLISHED_COLUMNS = (
    "activity_year",
    "lei",
    "derived_msa-md",
    "state_code",
    "county_code",
    "census_tract",
    "conforming_loan_limit",
    "derived_loan_product_type",
    "derived_dwelling_category",
    "derived_ethnicity",
    "derived_race",
    "derived_sex",
    "action_taken",
    "purchaser_type",
    "preapproval",
    "loan_type",
    "loan_purpose",
    "lien_status",
    "reverse_mortgage",
    "open-end_line_of_credit",
    "business_or_commercial_purpose",
    "loan_amount",
    "combined_loan_to_value_ratio",
    "interest_rate",
    "rate_spread",
    "hoepa_status",
    "total_loan_costs",
    "total_points_and_fees",
    "origination_charges",
    "discount_points",
    "lender_credits",
    "loan_term",
    "prepayment_penalty_term",
    "intro_rate_period",
    "negative_amortization",
    "interest_only_payment",
    "balloon_payment",
    "other_nonamortizing_features",
    "property_value",
    "construction_method",
    "occupancy_type",
    "manufactured_home_secured_property_type",
    "manufactured_home_land_property_interest",
    "total_units",
    "multifamily_affordable_units",
    "income",
    "debt_to_income_ratio",
    "applicant_credit_score_type",
    "co-applicant_credit_score_type",
    *(f"applicant_ethnicity-{i}" for i in range(1, 6)),
    *(f"co-applicant_ethnicity-{i}" for i in range(1, 6)),
    "applicant_ethnicity_observed",
    "co-applicant_ethnicity_observed",
    *(f"applicant_race-{i}" for i in range(1, 6)),
    *(f"co-applicant_race-{i}" for i in range(1, 6)),
    "applicant_race_observed",
    "co-applicant_race_observed",
    "applicant_sex",
    "co-applicant_sex",
    "applicant_sex_observed",
    "co-applicant_sex_observed",
    "applicant_age",
    "co-applicant_age",
    "applicant_age_above_62",
    "co-applicant_age_above_62",
    "submission_of_application",
    "initially_payable_to_institution",
    *(f"aus-{i}" for i in range(1, 6)),
    *(f"denial_reason-{i}" for i in range(1, 5)),
    "tract_population",
    "tract_minority_population_percent",
    "ffiec_msa_md_median_family_income",
    "tract_to_msa_income_percentage",
    "tract_owner_occupied_units",
    "tract_one_to_four_family_homes",
    "tract_median_age_of_housing_units",
)


def normalize_name(name: object) -> str:
    """The internal spelling of a column name: lower case, underscores for hyphens and spaces."""
    text = str(name).replace("\ufeff", "").strip().lower()
    return "_".join(text.replace("-", " ").replace("_", " ").split())
