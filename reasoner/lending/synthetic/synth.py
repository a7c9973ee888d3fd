"""Synthetic HMDA registers with planted discrimination, and the truth about every lender.

``synthesize(num_applications, num_lenders, seed, *, simple=False)`` returns ``(raw, truth)``. ``raw`` has the
99 public LAR columns in published order and spelling (Data Browser names: ``derived_msa-md``,
``applicant_race-1`` …), every value a string exactly as published: codes, ``NA`` where the
HMDA edits require it (V657 pricing for denials, V679/V681 DTI and CLTV for withdrawn,
incomplete and purchased), ``Exempt``/``1111`` for partially exempt lenders, DTI buckets,
income in thousands, loan amounts and property values at $10,000-interval midpoints. The
columns are pandas categoricals of those strings (memory stays small at 12 million rows).

``truth`` has one row per lender: ``lei``, ``discriminates``, ``kind`` ('fair',
'disparate_treatment', 'redlining', 'pricing'), ``effect_size``, then ``applications``,
``pool_gap`` and ``exempt``. What ``effect_size`` means depends on ``kind``:

Effect sizes of the simple register (see below for the default one):

- disparate_treatment (0.7 … 1.3): log-odds added to the denial of minority applicants (any
  race other than White, or Hispanic), whatever their financials.
- redlining (0.8 … 1.3): log-odds added to the denial of every application in a
  majority-minority tract; such tracts also get ``REDLINING_APPLICATION_FACTOR`` times the
  applications they get from peers in the same MSA.
- pricing (0.3 … 0.6): percentage points added to the rate (so to ``rate_spread``) of
  minority borrowers.
- fair: 0. ``pool_gap`` is the log-income gap of Black and Hispanic applicants (with matching
  DTI and CLTV gaps); about a third of fair lenders get a wide gap, so their raw approval
  gap is large although they decide on financials alone.

``simple=True`` (``reason synth --simple``) is the generator as it was before the confounds
below, row for row: a lender denies on the financials it reports (income, DTI as bucketed, CLTV,
loan-to-income, loan type) plus noise independent of group, so a fair lender has no gap once
those are held equal. Discriminating lenders are drawn from the larger half, partially exempt
lenders (whose DTI/CLTV/pricing are ``Exempt``) only among small fair ones.

The default register has the confounds of real ones, so that a method is not judged on data
shaped to fit it:

- lender sizes log-normal (σ 1.0): at 100,000 applications and 200 lenders the median lender
  has about 300; discriminating lenders are drawn from all but the smallest quarter;
- income, DTI and CLTV gaps by group at every lender (``pool_gap`` 0.1 … 0.45, uniform), and a
  credit score gap that is never published (``CREDIT_GAP``, in standard deviations; it weighs
  0.55 log-odds per SD in the decision, so a fair lender's Black applicants are denied with
  odds about 1.2 times those of White ones of the same published financials);
- product mix: Black and Hispanic applicants take more FHA loans (``FHA_TILT``), which cost
  ``FHA_PREMIUM`` points more in rate spread at every lender (a legitimate premium);
- nonlinear underwriting: the denial log-odds jump by 0.9 above 43% DTI and 1.1 more above 50%,
  by 0.35 above 80% CLTV and 0.9 more above 95%; DTI is published in HMDA's buckets;
- investment properties (occupancy 3, some of them business purpose), second homes, open-end
  lines (half the subordinate liens for home improvement and other purposes), loan terms of
  10 to 30 years; denial reasons (up to three) name the factors that weighed most;
- purchased loans: 15% of fair lenders buy 30% of their rows, from White tracts; preapproval
  requests (actions 7 and 8) for 6% of home-purchase first liens;
- ``HISPANIC_WITHOUT_RACE`` of Hispanic applicants give no race ('Race Not Available');
- disparate treatment (log-odds 0.4 … 1.1, odds ratio 1.5 … 3) and pricing (0.1 … 0.3 points)
  aimed at all minority applicants or at one group only (``TARGETS``, truth column ``group``);
  redlining (log-odds 0.4 … 1.0 in majority-minority tracts, and fewer applications there).

The truth then has ``group`` (whom the lender discriminates against: 'minority', 'Black',
'Hispanic', 'Asian', 'majority-minority tracts', or 'none') after ``effect_size``, and
``buys_in_white_tracts`` last.

Everything is vectorised numpy and deterministic for a seed: the world (MSAs, tracts,
lenders; the number of tracts grows with ``num_applications``) comes from one child of the
seed, each chunk of ``CHUNK`` applications from another, so ``write_synth`` streams 12
million rows chunk by chunk in bounded memory and ``synthesize`` gives the same rows. Written
files are byte-identical for a seed (with the same pyarrow); parquet columns are
dictionary-encoded strings, CSV is unquoted with the published header.
"""

from __future__ import annotations

import errno
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from reasoner.atomic import written_whole
from reasoner.errors import UsageError
from reasoner.lending.registers.fields import PUBLISHED_COLUMNS
from reasoner.lending.synthetic.names import NAME_COLUMNS, draw_names
from reasoner.lending.synthetic.publish import AGES, dti_as_read, publish_register

__all__ = ["CHUNK", "KINDS", "REDLINING_APPLICATION_FACTOR", "TARGETS", "synthesize", "write_synth"]

CHUNK = 1_000_000
KINDS = ("fair", "disparate_treatment", "redlining", "pricing")
REDLINING_APPLICATION_FACTOR = 0.35
# the confounded register (the default): whom a discriminating lender treats worse
TARGETS = ("minority", "Black", "Hispanic", "Asian")  # all minority applicants, or latent group 1, 2, 3 only
TARGET_SHARES = np.array([0.4, 0.25, 0.25, 0.1])
CREDIT_GAP = np.array([0.0, 0.35, 0.25, 0.0, 0.2])  # unpublished credit score gap (SD) by latent group
FHA_TILT = np.array([0.0, 0.14, 0.12, 0.01, 0.06])  # extra FHA share by latent group
FHA_PREMIUM = 0.8  # rate spread of FHA loans above conventional ones (mortgage insurance in the APR)
HISPANIC_WITHOUT_RACE = 0.35  # Hispanic applicants who give no race
APOR = 5.0
# MSA/MD code, state, county FIPS, FFIEC median family income, price level, minority share
MSAS = (
    ("12060", "GA", "13121", 86_200, 1.0, 0.50),
    ("16984", "IL", "17031", 93_600, 1.1, 0.45),
    ("19124", "TX", "48113", 89_300, 1.0, 0.50),
    ("26420", "TX", "48201", 82_300, 0.95, 0.60),
    ("31084", "CA", "06037", 89_100, 2.2, 0.70),
    ("33124", "FL", "12086", 65_700, 1.4, 0.75),
    ("35614", "NY", "36061", 97_400, 2.0, 0.55),
    ("47894", "DC", "11001", 126_000, 1.7, 0.55),
    ("99999", "MS", "28049", 55_000, 0.6, 0.40),
)
MSA_WEIGHTS = np.array([0.13, 0.14, 0.12, 0.12, 0.16, 0.09, 0.13, 0.07, 0.04])
# shares of the minority groups 1 Black, 2 Hispanic, 3 Asian, 4 other (0 is White, see publish)
GROUP_SHARES = np.array([0.40, 0.35, 0.20, 0.05])
AGE_SHARES = np.array([0.05, 0.24, 0.24, 0.19, 0.15, 0.09, 0.04])


@dataclass(frozen=True, slots=True)
class World:
    """MSAs, tracts and lenders: everything drawn once per seed."""

    msas: tuple[tuple[str, str, str, int, float, float], ...]
    tract_msa: np.ndarray  # MSA index of each tract (tracts sorted by MSA)
    tract_code: np.ndarray  # 11-digit tract strings
    tract_minority: np.ndarray  # fraction 0..1
    tract_income_pct: np.ndarray  # integer percent of MSA median family income
    tract_population: np.ndarray
    tract_cumulative: tuple[np.ndarray, ...]  # cumulative weights: peers, redliners (, White tracts)
    lei: np.ndarray
    share: np.ndarray
    kind: np.ndarray  # index into KINDS
    effect: np.ndarray
    pool_gap: np.ndarray
    exempt: np.ndarray
    home_msa: np.ndarray
    home_share: np.ndarray
    purchase_rate: np.ndarray
    base_logit: np.ndarray
    margin: np.ndarray
    target: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # index into TARGETS
    realistic: bool = False


def synthesize(
    num_applications: int, num_lenders: int, seed: int, *, simple: bool = False, names: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A published-format register of ``num_applications`` rows and the truth per lender
    (``simple``: the generator without confounds, as before they were added; ``names``: with the
    columns of ``names.NAME_COLUMNS`` after the published ones)."""
    world, chunks = _plan(num_applications, num_lenders, seed, simple=simple)
    records = [_draw(world, size, rng) for size, rng in chunks]
    merged = {name: np.concatenate([record[name] for record in records]) for name in records[0]} if records else {}
    raw = _publish(world, merged, num_applications)
    if names:
        drawn = [
            _names(world, record, rng) for record, rng in zip(records, _name_rngs(seed, len(records)), strict=True)
        ]
        for column in NAME_COLUMNS:
            values = np.concatenate([part[column] for part in drawn]) if drawn else np.array([], dtype=object)
            raw[column] = pd.Categorical(values)
    counts = np.bincount(merged["lender"], minlength=num_lenders) if records else np.zeros(num_lenders, int)
    return raw, _truth(world, counts)


def write_synth(
    out_path: str | Path,
    num_applications: int,
    num_lenders: int,
    seed: int,
    *,
    simple: bool = False,
    names: bool = False,
) -> Path:
    """Write the register (parquet for ``.parquet``/``.pq``, else CSV) and ``<stem>.truth.csv``
    (``names``: with surnames, first names and ZIP codes, ``names.draw_names``)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out_path)
    try:  # writable: said before the work, not after it
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as error:
        raise UsageError(f"{out}: cannot write: {error.strerror}") from None
    parquet = out.suffix.lower() in (".parquet", ".pq")
    world, chunks = _plan(num_applications, num_lenders, seed, simple=simple)
    counts = np.zeros(num_lenders, dtype=np.int64)
    columns = (*PUBLISHED_COLUMNS, *(NAME_COLUMNS if names else ()))
    schema = pa.schema([(name, pa.dictionary(pa.int32(), pa.string())) for name in columns])
    name_rngs = _name_rngs(seed, len(chunks)) if names else []
    truth = out.with_name(f"{out.stem}.truth.csv")
    with written_whole(out) as partial, partial.open("wb") as handle:
        writer: pq.ParquetWriter | pacsv.CSVWriter
        if parquet:
            writer = pq.ParquetWriter(handle, schema, compression="zstd")
        else:
            handle.write((",".join(columns) + "\n").encode())
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            writer = pacsv.CSVWriter(handle, schema, write_options=options)
        with writer:
            for index, (size, rng) in enumerate(chunks or [(0, np.random.default_rng(seed))]):
                record = _draw(world, size, rng)
                counts += np.bincount(record["lender"], minlength=num_lenders)
                published = _publish(world, record, size)
                if names:
                    drawn = (
                        _names(world, record, name_rngs[index])
                        if size
                        else {c: np.array([], object) for c in NAME_COLUMNS}
                    )
                    published = published.assign(**{c: pd.Categorical(drawn[c]) for c in NAME_COLUMNS})
                writer.write_table(_to_arrow(published, schema))
    with written_whole(truth) as partial:
        _truth(world, counts).to_csv(partial, index=False)
    return out


def _name_rngs(seed: int, count: int) -> list[np.random.Generator]:
    """One generator per chunk for the names: a stream of its own (the third child of the seed; the
    world and the chunks use the first two), so the other columns do not change with ``names``."""
    names_seed = np.random.SeedSequence(seed).spawn(3)[2]
    return [np.random.default_rng(child) for child in names_seed.spawn(count)]


def _names(world: World, record: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    states = np.array([msa[1] for msa in world.msas], dtype=object)
    return draw_names(record["group"], states[world.tract_msa[record["tract"]]], rng)


def _plan(
    num_applications: int, num_lenders: int, seed: int, *, simple: bool
) -> tuple[World, list[tuple[int, np.random.Generator]]]:
    if num_applications < 0 or num_lenders < 1:
        raise UsageError("synthesize needs num_applications >= 0 and num_lenders >= 1")
    world_seed, chunk_seed = np.random.SeedSequence(seed).spawn(2)
    make = _world if simple else _realistic_world
    world = make(num_applications, num_lenders, np.random.default_rng(world_seed))
    sizes = [min(CHUNK, num_applications - start) for start in range(0, num_applications, CHUNK)]
    rngs = [np.random.default_rng(child) for child in chunk_seed.spawn(len(sizes))]
    return world, list(zip(sizes, rngs, strict=True))


@dataclass(frozen=True, slots=True)
class _Geography:
    tract_msa: np.ndarray
    tract_code: np.ndarray
    minority: np.ndarray
    income_pct: np.ndarray
    population: np.ndarray
    weight: np.ndarray  # applications a tract draws from lenders that do not shun it


def _geography(num_applications: int, rng: np.random.Generator) -> _Geography:
    per_msa = int(np.clip(num_applications // (len(MSAS) * 150), 20, 2000))
    tract_msa = np.repeat(np.arange(len(MSAS)), per_msa)
    base = np.array([msa[5] for msa in MSAS])[tract_msa]
    logit = np.log(base / (1 - base)) + rng.normal(0.0, 1.7, tract_msa.size)
    minority = np.round(1 / (1 + np.exp(-logit)), 4)
    income_pct = np.clip(np.round(100 * np.exp(rng.normal(0, 0.25, tract_msa.size)) * (1.3 - 0.7 * minority)), 20, 300)
    population = rng.integers(1500, 9000, tract_msa.size)
    weight = population * (income_pct / 100) ** 0.8
    number = np.tile(np.arange(per_msa), len(MSAS))
    county = np.array([msa[2] for msa in MSAS])[tract_msa]
    tract_code = np.char.add(county.astype("U5"), np.char.zfill((100 + number * 100).astype("U6"), 6))
    return _Geography(tract_msa, tract_code, minority, income_pct, population, weight)


def _world(num_applications: int, num_lenders: int, rng: np.random.Generator) -> World:
    geography = _geography(num_applications, rng)
    tract_msa, tract_code, minority = geography.tract_msa, geography.tract_code, geography.minority
    income_pct, population, weight = geography.income_pct, geography.population, geography.weight
    redlined = np.where(minority > 0.5, REDLINING_APPLICATION_FACTOR, 1.0)
    cumulative = (np.cumsum(weight), np.cumsum(weight * redlined))

    share = np.exp(rng.normal(0.0, 1.4, num_lenders))  # skewed: a few large lenders, many small
    share = np.clip(share / share.sum(), 0.2 / num_lenders, max(0.25, 1.0 / num_lenders))
    share /= share.sum()
    kind = np.zeros(num_lenders, dtype=np.int64)
    counts = _kind_counts(num_lenders)
    larger = np.flatnonzero(share >= np.median(share))
    chosen = rng.permutation(larger if larger.size >= counts.sum() else np.arange(num_lenders))[: counts.sum()]
    kind[chosen] = np.repeat(np.arange(1, len(KINDS)), counts)
    effect = np.select(
        [kind == 1, kind == 2, kind == 3],
        [rng.uniform(0.7, 1.3, num_lenders), rng.uniform(0.8, 1.3, num_lenders), rng.uniform(0.3, 0.6, num_lenders)],
        0.0,
    ).round(3)
    fair = kind == 0
    pool_gap = np.where(fair & (rng.random(num_lenders) < 0.35), 0.45, 0.15)
    small = share < np.quantile(share, 0.4)
    exempt = fair & small & (rng.random(num_lenders) < 0.35)
    return World(
        msas=MSAS,
        tract_msa=tract_msa,
        tract_code=tract_code,
        tract_minority=minority,
        tract_income_pct=income_pct.astype(np.int64),
        tract_population=population,
        tract_cumulative=cumulative,
        lei=_leis(num_lenders, rng),
        share=share,
        kind=kind,
        effect=effect,
        pool_gap=pool_gap,
        exempt=exempt,
        home_msa=rng.choice(len(MSAS), num_lenders, p=MSA_WEIGHTS),
        home_share=np.where(share > 2 / num_lenders, 0.3, 0.85),
        purchase_rate=np.where(rng.random(num_lenders) < 0.1, 0.3, 0.01),
        base_logit=np.log(0.12 / 0.88) + rng.normal(0.0, 0.3, num_lenders),
        margin=rng.normal(0.0, 0.15, num_lenders),
    )


def _kind_counts(num_lenders: int) -> np.ndarray:
    wanted = np.maximum(1, np.round(num_lenders * np.array([0.10, 0.08, 0.08]))).astype(np.int64)
    budget = num_lenders // 2
    counts = np.zeros(3, dtype=np.int64)
    for position in range(int(wanted.max())):  # round robin so small worlds get one of each
        for index in range(3):
            if counts.sum() < budget and position < wanted[index]:
                counts[index] += 1
    return counts


def _leis(count: int, rng: np.random.Generator) -> np.ndarray:
    """20-character LEIs: a 4-character prefix, '00', 12 entity characters (the lender's
    number in base 36, then random), and ISO 17442 (mod 97-10) check digits."""
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    tails = ["".join(row) for row in alphabet[rng.integers(0, 36, (count, 8))]]
    leis = []
    for number, tail in enumerate(tails):
        index = np.base_repr(number, 36).rjust(4, "0")
        base = f"549300{index}{tail}"
        digits = "".join(str(int(character, 36)) for character in base + "00")
        leis.append(f"{base}{98 - int(digits) % 97:02d}")
    return np.array(leis, dtype=object)


def _applications(world: World, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Latent and reported values of ``size`` applications as numeric arrays."""
    lender = rng.choice(world.share.size, size, p=world.share)
    home = rng.random(size) < world.home_share[lender]
    msa = np.where(home, world.home_msa[lender], rng.choice(len(MSAS), size, p=MSA_WEIGHTS))
    tract = _tracts(world, msa, (world.kind[lender] == 2).astype(np.int64), rng)
    group = np.where(rng.random(size) < 0.85 * world.tract_minority[tract], 1 + rng.choice(4, size, p=GROUP_SHARES), 0)
    minority = group > 0
    disadvantaged = (group == 1) | (group == 2)
    gap = world.pool_gap[lender]
    price = np.array([msa_row[4] for msa_row in MSAS])[msa]

    purpose = rng.choice(np.array([1, 31, 32, 2, 4]), size, p=[0.55, 0.2, 0.13, 0.06, 0.06])
    income = np.round(
        np.exp(np.log(95) + 0.25 * np.log(price) - gap * disadvantaged + 0.1 * (group == 3) + rng.normal(0, 0.55, size))
    )
    income = np.maximum(income, 12)
    lti = np.exp(rng.normal(np.log(2.8), 0.35, size)) * price**0.35 * np.where(np.isin(purpose, (2, 4)), 0.3, 1.0)
    loan_amount = np.floor(income * 1000 * lti / 10_000) * 10_000 + 5_000
    cltv_mean = np.where(purpose == 1, 84.0, 66.0) + 13 * gap * disadvantaged
    cltv = np.round(np.clip(rng.normal(cltv_mean, 11.0), 15, 105), 3)
    property_value = np.floor(loan_amount / (cltv / 100) / 10_000) * 10_000 + 5_000
    dti_true = np.clip(rng.normal(34 + 13 * gap * disadvantaged + 8 * np.log(lti / 2.8), 8.5), 3, 85)
    loan_type = np.where(rng.random(size) < np.where(cltv > 90, 0.55, 0.08) + 0.05 * disadvantaged, 2, 1)
    loan_type = np.where(rng.random(size) < 0.06, 3, np.where(rng.random(size) < 0.01, 4, loan_type))
    lien = np.where(np.isin(purpose, (2, 4)) & (rng.random(size) < 0.5), 2, 1)

    action = np.zeros(size, dtype=np.int64)
    action[rng.random(size) < world.purchase_rate[lender]] = 6
    draw = rng.random(size)
    action[(action == 0) & (draw < 0.08)] = 4
    action[(action == 0) & (draw >= 0.08) & (draw < 0.11)] = 5
    preapproval = (action == 0) & (purpose == 1) & (rng.random(size) < 0.02)
    dti_seen = dti_as_read(dti_true)
    majority_minority = world.tract_minority[tract] > 0.5
    logit = (
        world.base_logit[lender]
        + 0.09 * (dti_seen - 36)
        + 0.045 * (cltv - 80)
        + 1.1 * np.log(loan_amount / (income * 1000) / 2.8)
        + 0.25 * (loan_type == 2)
        + rng.normal(0, 0.8, size)
        + np.where((world.kind[lender] == 1) & minority, world.effect[lender], 0.0)
        + np.where((world.kind[lender] == 2) & majority_minority, world.effect[lender], 0.0)
    )
    denied = rng.random(size) < 1 / (1 + np.exp(-logit))
    undecided = action == 0
    action[undecided & preapproval] = np.where(denied, 7, 8)[undecided & preapproval]
    undecided &= ~preapproval
    action[undecided & denied] = 3
    action[undecided & ~denied] = np.where(rng.random(size) < 0.93, 1, 2)[undecided & ~denied]

    rate = (
        APOR
        + 0.25
        + world.margin[lender]
        + 0.012 * (cltv - 80)
        + 0.01 * (dti_seen - 36)
        + 0.3 * (loan_type == 2)
        + 0.6 * (lien == 2)
        + rng.normal(0, 0.2, size)
        + np.where((world.kind[lender] == 3) & minority, world.effect[lender], 0.0)
    )
    interest_rate = np.round(rate * 8) / 8
    rate_spread = np.round(interest_rate + rng.normal(0.1, 0.05, size) - APOR, 3)
    return {
        "lender": lender,
        "msa": msa,
        "tract": tract,
        "group": group,
        "purpose": purpose,
        "income": income,
        "loan_amount": loan_amount,
        "cltv": cltv,
        "property_value": property_value,
        "dti": dti_true,
        "loan_type": loan_type,
        "lien": lien,
        "action": action,
        "interest_rate": interest_rate,
        "rate_spread": rate_spread,
        "unavailable": rng.random(size),
        "sex": rng.random(size),
        "age": rng.choice(len(AGES), size, p=AGE_SHARES),
        "coapplicant": rng.random(size),
        "income_na": rng.random(size) < 0.015,
        "noise": rng.random(size),
    }


def _realistic_world(num_applications: int, num_lenders: int, rng: np.random.Generator) -> World:
    """The world of the confounded register (module docstring): sizes skewed around a few
    hundred applications, discrimination of one group or of all minority applicants, fair
    lenders that buy loans in White tracts."""
    geography = _geography(num_applications, rng)
    minority = geography.minority
    redlined = np.where(minority > 0.5, REDLINING_APPLICATION_FACTOR, 1.0)
    white = geography.weight * (1 - minority) ** 3
    cumulative = (np.cumsum(geography.weight), np.cumsum(geography.weight * redlined), np.cumsum(white))
    share = np.exp(rng.normal(0.0, 1.0, num_lenders))  # log-normal: median about 0.6 of the mean
    share = np.clip(share / share.sum(), 0.05 / num_lenders, max(0.25, 1.0 / num_lenders))
    share /= share.sum()
    kind = np.zeros(num_lenders, dtype=np.int64)
    counts = _kind_counts(num_lenders)
    eligible = np.flatnonzero(share >= np.quantile(share, 0.25))
    chosen = rng.permutation(eligible if eligible.size >= counts.sum() else np.arange(num_lenders))[: counts.sum()]
    kind[chosen] = np.repeat(np.arange(1, len(KINDS)), counts)
    one_group = (kind == 1) | (kind == 3)
    target = np.where(one_group, rng.choice(len(TARGETS), num_lenders, p=TARGET_SHARES), 0)
    effect = np.select(
        [kind == 1, kind == 2, kind == 3],
        [rng.uniform(0.4, 1.1, num_lenders), rng.uniform(0.4, 1.0, num_lenders), rng.uniform(0.1, 0.3, num_lenders)],
        0.0,
    ).round(3)
    fair = kind == 0
    small = share < np.quantile(share, 0.4)
    return World(
        msas=MSAS,
        tract_msa=geography.tract_msa,
        tract_code=geography.tract_code,
        tract_minority=minority,
        tract_income_pct=geography.income_pct.astype(np.int64),
        tract_population=geography.population,
        tract_cumulative=cumulative,
        lei=_leis(num_lenders, rng),
        share=share,
        kind=kind,
        effect=effect,
        pool_gap=rng.uniform(0.1, 0.45, num_lenders).round(3),
        exempt=fair & small & (rng.random(num_lenders) < 0.35),
        home_msa=rng.choice(len(MSAS), num_lenders, p=MSA_WEIGHTS),
        home_share=np.where(share > 2 / num_lenders, 0.3, 0.85),
        purchase_rate=np.where(fair & (rng.random(num_lenders) < 0.15), 0.3, 0.01),
        base_logit=np.log(0.09 / 0.91) + rng.normal(0.0, 0.3, num_lenders),
        margin=rng.normal(0.0, 0.15, num_lenders),
        target=target,
        realistic=True,
    )


def _draw(world: World, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return _realistic_applications(world, size, rng) if world.realistic else _applications(world, size, rng)


def _realistic_applications(world: World, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Latent and reported values of ``size`` applications of the confounded register."""
    lender = rng.choice(world.share.size, size, p=world.share)
    home = rng.random(size) < world.home_share[lender]
    msa = np.where(home, world.home_msa[lender], rng.choice(len(MSAS), size, p=MSA_WEIGHTS))
    bought = rng.random(size) < world.purchase_rate[lender]
    weighting = np.where(bought & (world.purchase_rate[lender] > 0.1), 2, (world.kind[lender] == 2).astype(np.int64))
    tract = _tracts(world, msa, weighting, rng)
    group = np.where(rng.random(size) < 0.85 * world.tract_minority[tract], 1 + rng.choice(4, size, p=GROUP_SHARES), 0)
    disadvantaged = (group == 1) | (group == 2)
    gap = world.pool_gap[lender]
    price = np.array([msa_row[4] for msa_row in MSAS])[msa]

    purpose = rng.choice(np.array([1, 31, 32, 2, 4]), size, p=[0.55, 0.2, 0.13, 0.06, 0.06])
    occupancy = rng.choice(np.array([1, 2, 3]), size, p=[0.9, 0.03, 0.07])
    investor = occupancy == 3
    income = np.exp(
        np.log(95)
        + 0.25 * np.log(price)
        - gap * disadvantaged
        - 0.5 * gap * (group == 4)
        + 0.1 * (group == 3)
        + 0.25 * investor
        + rng.normal(0, 0.55, size)
    )
    income = np.maximum(np.round(income), 12)
    lti = np.exp(rng.normal(np.log(2.8), 0.35, size)) * price**0.35 * np.where(np.isin(purpose, (2, 4)), 0.3, 1.0)
    loan_amount = np.floor(income * 1000 * lti / 10_000) * 10_000 + 5_000
    cltv_mean = np.where(purpose == 1, 84.0, 66.0) + 10 * gap * disadvantaged - 8 * investor
    cltv = np.round(np.clip(rng.normal(cltv_mean, 11.0), 15, 105), 3)
    property_value = np.floor(loan_amount / (cltv / 100) / 10_000) * 10_000 + 5_000
    dti = np.clip(rng.normal(34 + 10 * gap * disadvantaged + 8 * np.log(lti / 2.8), 8.5), 3, 85)
    credit = rng.normal(0.0, 1.0, size) - CREDIT_GAP[group]  # never published
    lien = np.where(np.isin(purpose, (2, 4)) & (rng.random(size) < 0.5), 2, 1)
    open_end = (lien == 2) & (rng.random(size) < 0.6)
    insured = (lien == 1) & (occupancy == 1)  # government programmes: first liens on a home one lives in
    fha = 0.07 + FHA_TILT[group] + 0.3 * (cltv > 90) + 0.06 * (credit < -1)
    draw = rng.random(size)
    loan_type = np.select(
        [insured & (draw < fha), insured & (draw < fha + 0.05), insured & (draw < fha + 0.06)], [2, 3, 4], 1
    )
    term = rng.choice(np.array([360, 180, 240, 120, 300]), size, p=[0.8, 0.1, 0.04, 0.03, 0.03])
    business = investor & (rng.random(size) < 0.35)

    action = np.where(bought, 6, 0)
    draw = rng.random(size)
    action[(action == 0) & (draw < 0.08)] = 4
    action[(action == 0) & (draw >= 0.08) & (draw < 0.11)] = 5
    preapproval = (action == 0) & (purpose == 1) & (lien == 1) & (rng.random(size) < 0.06)
    target = world.target[lender]
    targeted = np.where(target == 0, group > 0, group == target)
    majority_minority = world.tract_minority[tract] > 0.5
    ratio_part = 0.04 * (dti - 36) + 0.9 * (dti > 43) + 1.1 * (dti > 50)
    value_part = 0.02 * (cltv - 80) + 0.35 * (cltv > 80) + 0.9 * (cltv > 95)
    credit_part = -0.55 * credit
    logit = (
        world.base_logit[lender]
        + ratio_part
        + value_part
        + credit_part
        + 1.0 * np.log(lti / 2.8)
        + 0.3 * investor
        + 0.25 * (loan_type == 2)
        + rng.normal(0, 0.6, size)
        + np.where((world.kind[lender] == 1) & targeted, world.effect[lender], 0.0)
        + np.where((world.kind[lender] == 2) & majority_minority, world.effect[lender], 0.0)
    )
    denied = rng.random(size) < 1 / (1 + np.exp(-logit))
    undecided = action == 0
    action[undecided & preapproval] = np.where(denied, 7, 8)[undecided & preapproval]
    undecided &= ~preapproval
    action[undecided & denied] = 3
    action[undecided & ~denied] = np.where(rng.random(size) < 0.93, 1, 2)[undecided & ~denied]
    reasons = _denial_reasons(np.column_stack([ratio_part, credit_part, value_part]), credit)

    rate = (
        APOR
        + 0.25
        + world.margin[lender]
        + 0.012 * (cltv - 80)
        + 0.01 * (dti - 36)
        + FHA_PREMIUM * (loan_type == 2)
        + 0.1 * (loan_type == 3)
        + 0.6 * (lien == 2)
        + 0.35 * investor
        - 0.06 * credit
        + rng.normal(0, 0.2, size)
        + np.where((world.kind[lender] == 3) & targeted, world.effect[lender], 0.0)
    )
    interest_rate = np.round(rate * 8) / 8
    rate_spread = np.round(interest_rate + rng.normal(0.1, 0.05, size) - APOR, 3)
    return {
        "lender": lender,
        "msa": msa,
        "tract": tract,
        "group": group,
        "purpose": purpose,
        "income": income,
        "loan_amount": loan_amount,
        "cltv": cltv,
        "property_value": property_value,
        "dti": dti,
        "loan_type": loan_type,
        "lien": lien,
        "action": action,
        "interest_rate": interest_rate,
        "rate_spread": rate_spread,
        "unavailable": rng.random(size),
        "sex": rng.random(size),
        "age": rng.choice(len(AGES), size, p=AGE_SHARES),
        "coapplicant": rng.random(size),
        "income_na": rng.random(size) < 0.015,
        "noise": rng.random(size),
        "race_missing": (group == 2) & (rng.random(size) < HISPANIC_WITHOUT_RACE),
        "occupancy": occupancy,
        "term": term,
        "open_end": open_end,
        "business": business,
        "reason_1": reasons[:, 0],
        "reason_2": reasons[:, 1],
        "reason_3": reasons[:, 2],
    }


def _denial_reasons(parts: np.ndarray, credit: np.ndarray) -> np.ndarray:
    """Up to three denial reasons per application, the factor that weighed most first: DTI (1),
    credit history (3), collateral (4) where that factor added at least 0.5 to the log-odds of
    denial; else credit history for a below-average credit record and 'other' (9). 0: none."""
    codes = np.array([1, 3, 4])
    order = np.argsort(-parts, axis=1, kind="stable")
    ranked = np.take_along_axis(parts, order, axis=1)
    reasons = np.where(ranked >= 0.5, codes[order], 0)
    reasons[:, 0] = np.where(reasons[:, 0] == 0, np.where(credit < 0, 3, 9), reasons[:, 0])
    return reasons


def _tracts(world: World, msa: np.ndarray, weighting: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A tract in each application's MSA, by the tract weights ``world.tract_cumulative[weighting]``
    (0 peers, 1 redliners, who shun majority-minority tracts, 2 loans bought in White tracts)."""
    first = np.searchsorted(world.tract_msa, np.arange(len(MSAS)))
    last = np.searchsorted(world.tract_msa, np.arange(len(MSAS)), side="right") - 1
    tract = np.empty(msa.size, dtype=np.int64)
    weighting = np.asarray(weighting, dtype=np.int64)
    for index, cumulative in enumerate(world.tract_cumulative):
        use = weighting == index
        start = np.where(first > 0, cumulative[np.maximum(first - 1, 0)], 0.0)[msa[use]]
        end = cumulative[last][msa[use]]
        chosen = np.searchsorted(cumulative, start + rng.random(int(use.sum())) * (end - start), side="right")
        tract[use] = np.clip(chosen, first[msa[use]], last[msa[use]])
    return tract


def _publish(world: World, record: dict[str, np.ndarray], size: int) -> pd.DataFrame:
    if size == 0:
        return pd.DataFrame({name: pd.Series([], dtype="str") for name in PUBLISHED_COLUMNS})
    return publish_register(world, record, size)


def _truth(world: World, counts: np.ndarray) -> pd.DataFrame:
    truth = pd.DataFrame(
        {
            "lei": pd.Series(world.lei, dtype="str"),
            "discriminates": world.kind > 0,
            "kind": pd.Series(np.array(KINDS, dtype=object)[world.kind], dtype="str"),
            "effect_size": world.effect,
            "applications": counts.astype(np.int64),
            "pool_gap": world.pool_gap,
            "exempt": world.exempt,
        }
    )
    if world.realistic:
        group = np.where(world.kind == 2, "majority-minority tracts", np.array(TARGETS, dtype=object)[world.target])
        truth.insert(4, "group", pd.Series(np.where(world.kind == 0, "none", group), dtype="str"))
        truth["buys_in_white_tracts"] = world.purchase_rate > 0.1
    return truth


def _to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Dictionary-encoded string columns (int32 indices, so every chunk has one schema)."""
    arrays = []
    for name in schema.names:
        column = frame[name]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype("category")
        codes = pa.array(column.cat.codes.to_numpy().astype(np.int32))
        categories = pa.array(column.cat.categories.to_numpy(dtype=object), type=pa.string())
        arrays.append(pa.DictionaryArray.from_arrays(codes, categories))
    return pa.Table.from_arrays(arrays, schema=schema)
