"""Build the held-out international PII cases (issue 17) deterministically: dev and test splits.

Written by a helper that did not read the recognizers (``src/modchain/backends/local/pii_*.py``) nor the
development cases (``international_pii_cases.jsonl``): only the list of labels in ``docs/international_pii.md``.
The sentence frames (``DEV_FRAMES``, ``TEST_FRAMES`` below) are hand-written; dev and test use different
frames, not just different numbers. Identifiers are generated with a fixed seed and every one is checked with
python-stdnum / phonenumbers before it goes in; look-alikes (order numbers, ISBNs, timestamps, tracking codes,
identifiers with a broken checksum) carry no span.

Output rows, as ``benchmarks/international_pii.py`` reads them:
``{"text": ..., "spans": [[start, end, LABEL], ...], "kind": "identifier" | "lookalike", "frame": "dev-12"}``

    python benchmarks/data/make_international_pii_heldout.py   # writes international_pii_heldout_{dev,test}.jsonl
"""

from __future__ import annotations

import json
import random
import re
import string
import sys
from pathlib import Path

import phonenumbers
from stdnum import bic, ean, iban, isbn, luhn, verhoeff
from stdnum.ca import bc_phn, sin
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs, utr
from stdnum.in_ import aadhaar, pan
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer

HERE = Path(__file__).parent
SEED = 20261207
COPIES = 2  # each frame is filled twice, with different numbers and (where the slot allows) formats
UP, DIG = string.ascii_uppercase, string.digits


def _digits(rng: random.Random, n: int, first: str = DIG) -> str:
    return rng.choice(first) + "".join(rng.choice(DIG) for _ in range(n - 1))


def _group(s: str, sizes: tuple[int, ...], sep: str) -> str:
    out, at = [], 0
    for n in sizes:
        out.append(s[at:at + n])
        at += n
    if at < len(s):
        out.append(s[at:])
    return sep.join(p for p in out if p)


# --- valid identifiers (compact form), each checked by the library that defines it ------------------------

def nino(rng):
    bad = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
    while True:
        p = rng.choice("ABCEGHJKLMNOPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if p not in bad:
            return p + _digits(rng, 6) + rng.choice("ABCD")


def nhs_no(rng):
    while True:
        body = _digits(rng, 9, "123456789")
        check = (11 - sum(int(d) * (10 - i) for i, d in enumerate(body)) % 11) % 11
        n = body + str(check)
        if check != 10 and nhs.is_valid(n):
            return n


def utr_no(rng):
    body = _digits(rng, 9)
    n = utr.calc_check_digit(body) + body
    assert utr.is_valid(n)
    return n


def aadhaar_no(rng):
    while True:
        body = _digits(rng, 11, "23456789")
        n = body + verhoeff.calc_check_digit(body)
        if aadhaar.is_valid(n):
            return n


def pan_no(rng):
    while True:
        n = ("".join(rng.choice(UP) for _ in range(3)) + rng.choice("PPPPPCHFT") + rng.choice(UP)
             + _digits(rng, 4, "123456789") + rng.choice(UP))
        if pan.is_valid(n):
            return n


def sin_no(rng):
    while True:
        body = _digits(rng, 8, "1234567")
        n = body + luhn.calc_check_digit(body)
        if sin.is_valid(n):
            return n


def ca_health(rng, kind=None):
    kind = kind or rng.choice(["ohip", "ohip", "bc"])
    if kind == "bc":
        while True:
            body = "9" + _digits(rng, 8)
            n = body + bc_phn.calc_check_digit(body)
            if bc_phn.is_valid(n):
                return n
    body = _digits(rng, 9, "123456789")
    return body + luhn.calc_check_digit(body)


def iban_no(rng, cc=None):
    cc = cc or rng.choice(["DE", "GB", "FR", "ES", "IT", "NL", "BE", "IE", "AT", "CH", "PL", "PT", "SE", "DK",
                           "FI", "NO", "LU"])
    struct = iban._ibandb.info(cc + "00")[0][1]["bban"]
    for _ in range(20000):
        bban = ""
        for count, kind in re.findall(r"(\d+)!?([nac])", struct):
            # 'c' (alphanumeric) fields are mostly digits in real account numbers
            pool = {"n": DIG, "a": UP, "c": DIG * 9 + UP}[kind]
            bban += "".join(rng.choice(pool) for _ in range(int(count)))
        n = cc + iban.calc_check_digits(cc + "00" + bban) + bban
        if iban.is_valid(n):
            return n
    raise RuntimeError(cc)


def swift(rng, branch=None):
    while True:
        cc = rng.choice(["DE", "GB", "FR", "ES", "IT", "NL", "BE", "CH", "IN", "CA", "IE", "AT", "PL", "SE"])
        n = "".join(rng.choice(UP) for _ in range(4)) + cc + rng.choice(UP) + rng.choice(UP + "23456789")
        if branch if branch is not None else rng.random() < 0.5:
            n += rng.choice(["XXX", _digits(rng, 3), "".join(rng.choice(UP) for _ in range(3))])
        if bic.is_valid(n):
            return n


def idnr_no(rng):
    while True:
        body = _digits(rng, 10, "123456789")
        n = body + mod_11_10.calc_check_digit(body)
        if idnr.is_valid(n):
            return n


def es_id(rng, kind=None):
    if (kind or rng.choice(["dni", "dni", "nie"])) == "nie":
        head, body = rng.choice("XYZ"), _digits(rng, 7)
        n = head + body + nie.calc_check_digit(head + body)
        assert nie.is_valid(n)
        return n
    body = _digits(rng, 8)
    n = body + dni.calc_check_digit(body)
    assert dni.is_valid(n)
    return n


def nir_no(rng):
    while True:
        body = (rng.choice("12") + f"{rng.randint(50, 99):02d}" + f"{rng.randint(1, 12):02d}"
                + f"{rng.choice([rng.randint(1, 19), rng.randint(21, 95)]):02d}" + _digits(rng, 3) + _digits(rng, 3))
        n = body + nir.calc_check_digits(body)
        if nir.is_valid(n):
            return n


def cf_no(rng):
    while True:
        body = ("".join(rng.choice("BCDFGLMNPRSTVZ") for _ in range(3)) + "".join(rng.choice(UP) for _ in range(3))
                + f"{rng.randint(50, 99):02d}" + rng.choice("ABCDEHLMPRST")
                + f"{rng.choice([rng.randint(1, 28), rng.randint(41, 68)]):02d}"
                + rng.choice(["H501", "F205", "L219", "G273", "A944", "D612", "F839", "L736"]))
        n = body + codicefiscale.calc_check_digit(body)
        if codicefiscale.is_valid(n):
            return n


def bsn_no(rng):
    while True:
        n = _digits(rng, 9, "123456")
        if bsn.is_valid(n):
            return n


def pesel_no(rng):
    while True:
        y, m, d = rng.randint(1950, 2008), rng.randint(1, 12), rng.randint(1, 28)
        mm = m + (20 if y >= 2000 else 0)
        body = f"{y % 100:02d}{mm:02d}{d:02d}" + _digits(rng, 4)
        n = body + pesel.calc_check_digit(body)
        if pesel.is_valid(n):
            return n


def pnr_no(rng):
    while True:
        body = f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" + _digits(rng, 3)
        n = body + luhn.calc_check_digit(body)
        if personnummer.is_valid(n):
            return n


PHONE_REGIONS = ["GB", "DE", "FR", "IN", "ES", "IT", "NL", "CA", "IE", "CH", "AU", "PL", "SE", "BE", "AT"]


def phone(rng, region=None, mobile=None):
    region = region or rng.choice(PHONE_REGIONS)
    kind = phonenumbers.PhoneNumberType.MOBILE if (mobile if mobile is not None else rng.random() < 0.6) \
        else phonenumbers.PhoneNumberType.FIXED_LINE
    ex = phonenumbers.example_number_for_type(region, kind)
    nsn = phonenumbers.national_significant_number(ex)  # keeps the leading zero of Italian fixed lines
    while True:
        cut = max(4, len(nsn) - 6)
        num = phonenumbers.parse("+" + str(ex.country_code) + nsn[:cut] + _digits(rng, len(nsn) - cut), None)
        if phonenumbers.is_valid_number(num) and phonenumbers.national_significant_number(num) != nsn:
            return num


def email(rng, style=None):
    first = rng.choice(["anna", "markus", "priya", "rahul", "claire", "jordi", "giulia", "sanne", "tom", "olivia",
                        "kasia", "erik", "fatima", "liam", "chloe", "arjun", "lena", "pablo", "marco", "noor"])
    last = rng.choice(["schmidt", "sharma", "dubois", "garcia", "rossi", "devries", "okafor", "nowak", "lindqvist",
                       "patel", "murphy", "tremblay", "bianchi", "moreau", "kumar", "fischer", "jansen", "evans"])
    host = rng.choice(["gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "orange.fr", "libero.it", "ziggo.nl",
                       "rediffmail.com", "icloud.com", "proton.me", "gmx.de", "telefonica.net", "hotmail.fr"])
    local = rng.choice([f"{first}.{last}", f"{first}{last[0]}", f"{first[0]}{last}{rng.randint(1, 99)}",
                        f"{first}_{last}"])
    style = style or "plain"
    if style == "at":
        name, dom = host.split(".", 1)
        return f"{local} [at] {name} [dot] {dom.replace('.', ' [dot] ')}"
    if style == "paren":
        name, dom = host.split(".", 1)
        return f"{local}(at){name}(dot){dom.replace('.', '(dot)')}"
    if style == "words":
        name, dom = host.split(".", 1)
        return f"{local} at {name} dot {dom.replace('.', ' dot ')}"
    if style == "idn":
        return rng.choice(["jörg.müller@exämple.de", "françois@société-générale.fr", "josé.núñez@correo-españa.es",
                           "björn@företag.se", "zoë.smit@bloemenwinkel.nl", "chloé@café-lumière.fr",
                           "müller@bäckerei-schön.de", "nuño@señal.es", "jürgen@straße.de", "åsa@kött.se"])
    return f"{local}@{host}"


def passport(rng, country):
    al = lambda n: "".join(rng.choice(UP) for _ in range(n))  # noqa: E731
    return {
        "GB": lambda: _digits(rng, 9, "12345"),
        "US": lambda: rng.choice([_digits(rng, 9, "5"), al(1) + _digits(rng, 8)]),
        "IN": lambda: rng.choice("JKLMNPRSTUVWZ") + _digits(rng, 7, "123456789"),
        "DE": lambda: rng.choice("CFGHJK") + "".join(rng.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(8)),
        "FR": lambda: _digits(rng, 2) + al(2) + _digits(rng, 5),
        "CA": lambda: al(2) + _digits(rng, 6),
        "ES": lambda: al(3) + _digits(rng, 6),
        "IT": lambda: al(2) + _digits(rng, 7),
    }[country]()


def driver_id(rng, country):
    if country == "GB":
        surname = rng.choice(["MORGA", "SMITH", "PATEL", "OCONN", "WALSH", "JONES", "KHAN9", "LEE99", "HUGHE"])
        y, m, d = rng.randint(50, 99), rng.randint(1, 12) + rng.choice([0, 50]), rng.randint(1, 28)
        return (surname + str(y // 10) + f"{m:02d}{d:02d}" + str(y % 10) + rng.choice(UP) + rng.choice(UP + "9")
                + "9" + rng.choice(UP) + rng.choice(UP))
    if country == "US-CA":
        return rng.choice(UP) + _digits(rng, 7)
    if country == "IN":
        return (rng.choice(["MH12", "DL03", "KA05", "TN09", "UP16", "WB20"]) + rng.choice([" ", "", "-"])
                + str(rng.randint(2005, 2022)) + _digits(rng, 7))
    if country == "DE":
        return rng.choice("BFGJK") + _digits(rng, 3) + "".join(rng.choice(UP + DIG) for _ in range(5)) + _digits(rng, 2)
    if country == "FR":
        return _digits(rng, 12)
    raise KeyError(country)


# --- how each labelled slot is written ------------------------------------------------------------------------

LABELS = {
    "NINO": "UK_NATIONAL_INSURANCE_NUMBER", "NHS": "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UTR": "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "AAD": "IN_AADHAAR", "PAN": "IN_PERMANENT_ACCOUNT_NUMBER",
    "SIN": "CA_SOCIAL_INSURANCE_NUMBER", "CAH": "CA_HEALTH_NUMBER", "IBAN": "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "SWIFT": "SWIFT_CODE", "PASS": "PASSPORT_NUMBER", "DL": "DRIVER_ID", "IDNR": "DE_TAX_IDENTIFICATION_NUMBER",
    "ESID": "ES_NATIONAL_IDENTITY_NUMBER", "NIR": "FR_SOCIAL_SECURITY_NUMBER", "CF": "IT_FISCAL_CODE",
    "BSN": "NL_CITIZEN_SERVICE_NUMBER", "PESEL": "PL_NATIONAL_IDENTIFICATION_NUMBER",
    "SEPN": "SE_PERSONAL_IDENTITY_NUMBER", "PHONE": "PHONE", "EMAIL": "EMAIL",
}

VALIDATORS = {
    "NHS": nhs.is_valid, "UTR": utr.is_valid, "AAD": aadhaar.is_valid, "PAN": pan.is_valid, "SIN": sin.is_valid,
    "IBAN": iban.is_valid, "IDNR": idnr.is_valid, "ESID": lambda n: dni.is_valid(n) or nie.is_valid(n),
    "NIR": nir.is_valid, "CF": codicefiscale.is_valid, "BSN": bsn.is_valid, "PESEL": pesel.is_valid,
    "SEPN": personnummer.is_valid,
}


def _iban_text(rng, n, fmt):
    fmt = fmt or rng.choice(["space4", "space4", "compact", "dash4"])
    if fmt == "compact":
        return n
    groups = [n[i:i + 4] for i in range(0, len(n), 4)]
    if fmt == "dash4":
        return "-".join(groups)
    if fmt == "lower":
        return " ".join(groups).lower()
    if fmt == "break":  # wrapped by a mail client after the third or fourth group
        at = rng.choice([k for k in (2, 3, 4) if k < len(groups)])
        return " ".join(groups[:at]) + "\n" + " ".join(groups[at:])
    return " ".join(groups)


def _fmt_digits(rng, n, options):
    sizes, sep = rng.choice(options)
    return _group(n, sizes, sep) if sizes else n


def write_slot(rng, name, opts):
    """The text of one slot: (text, label or None)."""
    a = opts[0] if opts else None
    if name == "NINO":
        n = nino(rng)
        n = rng.choice([n, f"{n[:2]} {n[2:4]} {n[4:6]} {n[6:8]} {n[8]}"])
        return (n.lower() if a == "lower" else n), LABELS[name]
    if name == "NHS":
        return _fmt_digits(rng, nhs_no(rng), [((3, 3, 4), " "), ((3, 3, 4), " "), ((), ""), ((3, 3, 4), "-")]), LABELS[name]
    if name == "UTR":
        return _fmt_digits(rng, utr_no(rng), [((5, 5), " "), ((), "")]), LABELS[name]
    if name == "AAD":
        return _fmt_digits(rng, aadhaar_no(rng), [((4, 4, 4), " "), ((4, 4, 4), " "), ((), ""), ((4, 4, 4), "-")]), LABELS[name]
    if name == "PAN":
        return pan_no(rng), LABELS[name]
    if name == "SIN":
        return _fmt_digits(rng, sin_no(rng), [((3, 3, 3), " "), ((3, 3, 3), "-"), ((), "")]), LABELS[name]
    if name == "CAH":
        n = ca_health(rng, a)
        if n.startswith("9") and a == "bc":
            return _group(n, (4, 3, 3), " "), LABELS[name]
        return _fmt_digits(rng, n, [((4, 3, 3), "-"), ((4, 3, 3), " "), ((), "")]), LABELS[name]
    if name == "IBAN":
        return _iban_text(rng, iban_no(rng, a), opts[1] if len(opts) > 1 else None), LABELS[name]
    if name == "SWIFT":
        return swift(rng, {"8": False, "11": True}.get(a)), LABELS[name]
    if name == "PASS":
        return passport(rng, a), LABELS[name]
    if name == "DL":
        return driver_id(rng, a), LABELS[name]
    if name == "IDNR":
        return _fmt_digits(rng, idnr_no(rng), [((2, 3, 3, 3), " "), ((), "")]), LABELS[name]
    if name == "ESID":
        n = es_id(rng, a)
        return (n if rng.random() < 0.7 else n[:-1] + "-" + n[-1]), LABELS[name]
    if name == "NIR":
        n = nir_no(rng)
        return _fmt_digits(rng, n, [((1, 2, 2, 2, 3, 3, 2), " "), ((), "")]), LABELS[name]
    if name == "CF":
        return codicefiscale_text(rng), LABELS[name]
    if name == "BSN":
        n = bsn_no(rng)
        return rng.choice([n, f"{n[:4]}.{n[4:6]}.{n[6:]}", f"{n[:3]} {n[3:6]} {n[6:]}"]), LABELS[name]
    if name == "PESEL":
        return pesel_no(rng), LABELS[name]
    if name == "SEPN":
        n = pnr_no(rng)
        century = "19" if int(n[:2]) > 26 else "20"
        return rng.choice([f"{n[:6]}-{n[6:]}", f"{century}{n[:6]}-{n[6:]}"]), LABELS[name]
    if name == "PHONE":
        num = phone(rng, a)
        fmt = opts[1] if len(opts) > 1 else rng.choice(["intl", "national", "00"])
        pf = phonenumbers.PhoneNumberFormat
        if fmt == "national":
            return phonenumbers.format_number(num, pf.NATIONAL), "PHONE"
        text = phonenumbers.format_number(num, pf.E164 if fmt == "e164" else pf.INTERNATIONAL)
        if fmt == "intl0":  # "+44 (0)20 ...": the trunk zero in brackets, common in British and German signatures
            code, rest = text.split(" ", 1)
            return f"{code} (0){rest}", "PHONE"
        return ("00" + text[1:] if fmt == "00" else text), "PHONE"
    if name == "EMAIL":
        return email(rng, a), "EMAIL"
    return lookalike(rng, name, opts), None


def codicefiscale_text(rng):
    return cf_no(rng)


# --- look-alikes: no label ------------------------------------------------------------------------------------

def broken(rng, label, opts):
    """A label's identifier with one character changed so that its own validator rejects it."""
    while True:
        text, _ = write_slot(rng, label, opts)
        if label == "PAN":  # no check digit: the holder-type letter is what makes it invalid
            text = text[:3] + rng.choice("DEIKMNOQRSUVWXYZ") + text[4:]
        else:
            positions = [i for i, c in enumerate(text) if c.isdigit() and i > (3 if label == "IBAN" else -1)]
            i = rng.choice(positions)
            text = text[:i] + str((int(text[i]) + rng.randint(1, 9)) % 10) + text[i + 1:]
        if not VALIDATORS[label](re.sub(r"[\s.\-]", "", text).upper()):
            return text


def lookalike(rng, name, opts):
    if name == "BAD":
        return broken(rng, opts[0], opts[1:])
    if name == "N":
        return _digits(rng, int(opts[0]))
    if name == "A":
        return "".join(rng.choice(UP) for _ in range(int(opts[0])))
    if name == "ISBN":
        body = "978" + _digits(rng, 9)
        return isbn.format(body + ean.calc_check_digit(body))
    if name == "TS":
        return (f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z")
    if name == "DATE":
        d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2024, 2026)
        return rng.choice([f"{d:02d}.{m:02d}.{y}", f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}"])
    if name == "VER":
        return f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"
    if name == "TRACK":
        if rng.random() < 0.5:
            return "1Z" + "".join(rng.choice(UP + DIG) for _ in range(6)) + _digits(rng, 10)
        return rng.choice(["RR", "LX", "CP", "EE"]) + _digits(rng, 9) + rng.choice(["GB", "DE", "FR", "NL", "IN"])
    raise KeyError(name)


# --- sentence frames: {SLOT} or {SLOT:option:option}; dev and test share no frame ------------------------------

DEV_FRAMES = [
    # UK National Insurance
    "Hi HR team, my National Insurance number is {NINO} – sorry it wasn't on the starter form.",
    "Payroll query: new joiner Priya Nair, NI no. {NINO}, start date 3 Feb. Can you set her up on the March run?",
    "hey can u check my P60 pls, NINO {NINO} and the employer ref looks wrong",
    "Sehr geehrte Damen und Herren, meine britische Sozialversicherungsnummer (National Insurance) lautet {NINO}.",
    "ni number {NINO:lower} (typed from my phone sorry)",
    # NHS
    "Patient: Mr David Okoro, DOB 14/07/1961, NHS number {NHS}. Referred for echo.",
    "Hi, I've just moved to Leeds and need to register with the GP – my NHS no is {NHS}",
    "Can you resend my prescription? NHS No: {NHS}. Thanks, Margaret",
    "Discharge summary attached. NHS {NHS} / ward 7B / consultant Dr Hale.",
    "Mijn zoon is in Londen geboren, zijn NHS-nummer is {NHS}; heeft u dat nodig voor de huisarts?",
    # UTR
    "My self assessment UTR is {UTR}, could you file the return before 31 January?",
    "HMRC letter says my Unique Taxpayer Reference is {UTR} but the portal won't accept it",
    "Client onboarding – sole trader, UTR: {UTR}, VAT registered: no.",
    "Hi Sam, for the tax return I need your UTR ({UTR}) and last year's P60.",
    "Unique Taxpayer Ref {UTR} — partnership return, 2 partners",
    # Aadhaar
    "Sir, my Aadhaar number is {AAD}, please link it with my bank account.",
    "KYC pending hai, Aadhaar {AAD} upload kar diya tha phir bhi reject ho gaya",
    "Name: Sunita Devi\nAadhaar No.: {AAD}\nMobile: {PHONE:IN:national}",
    "bhai mera aadhar card number {AAD} hai, gas connection ke liye chahiye tha",
    "Please find my UID {AAD} for the hostel admission form.",
    # PAN
    "Please update my PAN {PAN} in the demat account, the TDS is being deducted at 20%.",
    "PAN card no. {PAN} – Form 16 mein galat name aa raha hai, please correct karo",
    "Vendor registration: GST pending, PAN {PAN}, contact Ravi",
    "Hi, ITR filing ke liye mera PAN hai {PAN}. Refund abhi tak nahi aaya.",
    "Permanent Account Number: {PAN}\nName as per PAN: KAVITA MENON",
    # Canadian SIN
    "Employee onboarding – Social Insurance Number: {SIN}, province: ON.",
    "Hi, my SIN is {SIN}, can you update my file before tax season?",
    "Bonjour, mon numéro d'assurance sociale (NAS) est le {SIN}.",
    "CRA keeps rejecting my return, social insurance number {SIN} – is it a typo on their end?",
    "SIN# {SIN} — please add to the T4 for 2024",
    # Canadian health numbers
    "My OHIP number is {CAH:ohip}, the clinic says the card expired.",
    "Patient BC PHN {CAH:bc}, allergy: penicillin.",
    "Health card # {CAH:ohip} – please bring it to your appointment on Tuesday.",
    "Bonjour, mon numéro de carte santé de l'Ontario est {CAH:ohip}.",
    "Personal Health Number {CAH:bc} (BC Services Card), requesting records transfer",
    # IBAN
    "Please transfer the deposit to IBAN {IBAN:DE}, account holder Lena Fischer.",
    "Bitte überweisen Sie den Betrag auf folgendes Konto: IBAN {IBAN:DE:space4}, BIC {SWIFT}.",
    "Refund to {IBAN:GB:dash4} please, I closed the card.",
    "Veuillez effectuer le virement sur le compte {IBAN:FR:space4}\nMerci d'avance.",
    "Our bank details changed – new IBAN:\n{IBAN:NL:break}\nPlease update your records.",
    "iban {IBAN:ES:compact} titular Jordi Puig",
    "Can you send the rent to my Irish account {IBAN:IE:space4}? Thanks!",
    "Please pay the invoice into our account IBAN {IBAN:BE:break} by Friday.",
    # SWIFT
    "For international wires use SWIFT {SWIFT} and our euro account.",
    "What's the BIC for the transfer? Is it {SWIFT:8}?",
    "Bank: Northbridge Bank plc, SWIFT/BIC: {SWIFT:11}, sort code on request.",
    "Il codice BIC della nostra banca è {SWIFT}, IBAN {IBAN:IT:space4}.",
    "wire details — beneficiary bank swift code {SWIFT:11}, intermediary not needed",
    # Passport
    "Booking for 2 adults. Lead passenger passport number {PASS:GB}, expiry 2031.",
    "Reisepassnummer: {PASS:DE}, gültig bis 04/2030",
    "Hi, my passport no is {PASS:IN} – do I need to re-upload for the visa?",
    "Numéro de passeport : {PASS:FR}, délivré à Lyon.",
    "Check-in issue: the airline has passport {PASS:CA} but I renewed it last month.",
    # Driver ID
    "Driving licence number: {DL:GB} – I need to add my partner to the insurance.",
    "My driver's license # is {DL:US-CA}, renewing it next month.",
    "DL No. {DL:IN} – RTO address change request",
    "Führerscheinnummer {DL:DE}, Klasse B",
    "For the rental pick-up: driver's licence {DL:GB}, second driver none.",
    # German Steuer-ID
    "Meine Steuer-ID ist {IDNR}, bitte für die Lohnabrechnung hinterlegen.",
    "Steuerliche Identifikationsnummer: {IDNR}\nSteuerklasse: 1",
    "Hi, the German tax ID on my contract is {IDNR}, is that correct for the payroll?",
    "Sehr geehrte Damen und Herren, anbei meine IdNr {IDNR} für die Rentenversicherung.",
    "Steuer-IdNr. {IDNR} (nicht die Steuernummer!)",
    # Spanish DNI / NIE
    "Hola, mi DNI es {ESID:dni}, necesito cambiar la dirección de envío.",
    "Para el contrato de alquiler: NIE {ESID:nie}, pasaporte en trámite.",
    "Titular: Marta López Ruiz, DNI {ESID:dni}, teléfono {PHONE:ES:national}",
    "Please confirm your identity with your DNI/NIE: {ESID}",
    "Buenas, os paso el NIE de mi pareja: {ESID:nie}. Gracias!",
    # French NIR
    "Bonjour, mon numéro de sécurité sociale est le {NIR}. Je n'ai pas reçu le remboursement.",
    "N° de sécu : {NIR} – mutuelle Harmonie, contrat 55120.",
    "Can you update the social security number on my French payslip? It's {NIR}.",
    "Salarié : Julien Moreau, NIR {NIR}, date d'embauche 02/09.",
    "Numéro INSEE de l'assuré : {NIR}",
    # Italian codice fiscale
    "Buongiorno, il mio codice fiscale è {CF}, non riesco ad accedere allo SPID.",
    "Per la fattura: C.F. {CF}, Via Roma 12, Torino.",
    "Hi, the Italian tax code on my lease is {CF} – is the format right?",
    "Codice fiscale del paziente: {CF}\nMedico curante: Dr.ssa Ferri",
    "cf {CF} per la tessera della palestra",
    # Dutch BSN
    "Mijn BSN is {BSN}, kunt u dat doorgeven aan de salarisadministratie?",
    "Burgerservicenummer: {BSN}\nGeboortedatum: 12-05-1990",
    "Hi, for the Dutch payroll my citizen service number (BSN) is {BSN}.",
    "Graag het BSN {BSN} vermelden op de aanvraag van de zorgtoeslag.",
    "BSN-nummer van de huurder: {BSN}",
    # Polish PESEL
    "Mój PESEL to {PESEL}, proszę o aktualizację danych.",
    "Employee from the Kraków office, PESEL {PESEL}, needs a new badge.",
    "Dane pacjenta: Anna Nowak, PESEL: {PESEL}",
    "Hi, my Polish ID (PESEL number) is {PESEL} – is that enough for the lease?",
    "nr PESEL dziecka {PESEL}, zapis do przedszkola",
    # Swedish personnummer
    "Mitt personnummer är {SEPN}, kan ni skicka fakturan igen?",
    "Swedish personal identity number: {SEPN}. Please add to the HR record.",
    "Personnr {SEPN} – byte av adress från 1 maj.",
    "Hej! Jag heter Erik och mitt personnummer är {SEPN}.",
    "Customer (Sweden), personnummer {SEPN}, credit check requested",
    # Phone
    "Call me back on {PHONE:GB:intl} after 6pm please.",
    "Rufen Sie mich bitte unter {PHONE:DE:national} an.",
    "WhatsApp: {PHONE:IN:intl}",
    "mon portable c'est le {PHONE:FR:national}, merci de me rappeler",
    "Our Dublin office: {PHONE:IE:00}, Zurich: {PHONE:CH:intl}",
    "Llámame al {PHONE:ES:intl} cuando puedas.",
    "text me on {PHONE:AU:e164} when you land",
    # Email
    "Please send the invoice to {EMAIL}.",
    "contact me at {EMAIL:at}, the form strips normal addresses",
    "Meine E-Mail: {EMAIL:idn}",
    "Scrivimi a {EMAIL:paren} per i dettagli.",
    "reply to {EMAIL:words} thanks",
    "Mail: {EMAIL}, Tel. {PHONE:NL:national}",
    # forms with several identifiers
    "New starter form\nName: Aisha Khan\nNI number: {NINO}\nBank: IBAN {IBAN:GB:space4}\nEmail: {EMAIL}\nMobile: {PHONE:GB:national}",
    "Travel booking – passenger 1: Rahul Verma, passport {PASS:IN}, phone {PHONE:IN:intl}, email {EMAIL}",
    "Rechnung\nBitte zahlen Sie bis 15.04. auf IBAN {IBAN:DE:space4} (BIC {SWIFT}).\nSteuer-ID des Leistungserbringers: {IDNR}",
    "Ticket: customer says the refund went to the wrong account. Old IBAN {IBAN:FR:compact}, new IBAN {IBAN:BE:space4}.",
    "Onboarding checklist (Toronto): SIN {SIN} done, OHIP {CAH:ohip} done, direct deposit done",
    "KYC docs received: PAN {PAN}, Aadhaar {AAD}, address proof pending.",
    "Dati dipendente – Codice fiscale: {CF}; IBAN: {IBAN:IT:compact}; cellulare {PHONE:IT:intl}",
    "Gegevens nieuwe medewerker: BSN {BSN}, IBAN {IBAN:NL:space4}, e-mail {EMAIL}",
    "Dear Sir/Madam, my UTR is {UTR} and my NI number {NINO}; please send the SA302 to {EMAIL}.",
    "Formularz: PESEL {PESEL}, telefon {PHONE:PL:intl}, e-mail {EMAIL:at}",
    # look-alikes
    "Your order #{N:3}-{N:7} has shipped and should arrive Thursday.",
    "Invoice INV-2025-{N:5} is overdue by 14 days, amount due £1,240.00.",
    "Can you check ISBN {ISBN}? The library system shows it as missing.",
    "Server log: {TS} ERROR worker-{N:2} timed out after 30000 ms",
    "Bitte aktualisieren Sie auf Version {VER} (Build {N:8}).",
    "Tracking code {TRACK} – the parcel is stuck in Frankfurt.",
    "Consumer no. {BAD:AAD} for the electricity bill, please check the reading.",
    "My NHS number is {BAD:NHS}, or at least that's what I wrote down.",
    "IBAN {BAD:IBAN} – the bank says this one is invalid, can you double-check?",
    "The form says SIN {BAD:SIN} is not valid, what am I doing wrong?",
    "Meeting moved to {DATE} at 14:30, room 4.12.",
    "Flight LH{N:4} departs 07:45, booking ref {A:6}, seat 23C.",
    "Die IdNr {BAD:IDNR} wird vom Portal abgelehnt, ist da ein Zahlendreher drin?",
    "Product SKU {A:3}-{N:6}-{A:2}, qty 12, unit price €4.99",
    "Il numero d'ordine è {N:10}, consegna prevista lunedì.",
    "Il codice fiscale {BAD:CF} risulta errato nel sistema.",
    "Patch notes for {VER}: fixed crash on startup, ticket {A:4}-{N:4}.",
    "Het BSN {BAD:BSN} wordt door het systeem geweigerd, kunt u het nakijken?",
    "Aadhaar {BAD:AAD} galat bata raha hai portal, dobara check karo",
    "Total: 1.234.567,89 EUR, Kundennummer {N:7}, Zahlungsziel {DATE}",
    "Referencia del pedido {N:12}, fecha {DATE}",
    "Numéro de facture F{N:8}, échéance le {DATE}.",
]

TEST_FRAMES = [
    # UK National Insurance
    "Hiya, filling in the mortgage application – is my NI {NINO} needed on page 3 or just page 1?",
    "Employee record update\nSurname: Walsh\nNational Insurance No: {NINO}\nTax code: 1257L",
    "HMRC has two NI numbers for me?? the right one is {NINO}",
    "Ciao, sono in UK da un anno, il mio national insurance number è {NINO}.",
    "Universal Credit claim – NINO: {NINO}, claimant Jade Turner",
    # NHS
    "Appointment reminder for NHS No. {NHS} on 3 June at 9:20, Outpatients B.",
    "my mum's NHS number is {NHS}, she can't log into the app",
    "Bloods requested – NHS number: {NHS}, fasting sample.",
    "Ich bin in England versichert, NHS-Nummer {NHS}, brauche eine Bescheinigung.",
    "Re: repeat prescription. NHS no {NHS}, pharmacy Boots High St.",
    # UTR
    "Hi, I've lost my UTR letter – I think it's {UTR}, can you confirm from your records?",
    "Re: HMRC penalty notice, UTR {UTR}, tax year 2023-24",
    "Subcontractor verification (CIS): UTR {UTR}, trading name Blake Roofing.",
    "Accountant asked for my self assessment reference — UTR {UTR}.",
    "Mi commercialista inglese chiede il mio UTR: {UTR}",
    # Aadhaar
    "Respected sir, kindly update my address. Aadhaar: {AAD}. Regards, Mohan",
    "Aadhaar card no {AAD} se OTP nahi aa raha, number change karna hai",
    "Verification done via UIDAI – aadhaar {AAD}, status: success",
    "mera aadhaar {AAD} hai aur PAN se link nahi ho raha",
    "Scholarship form: student Aadhaar number {AAD}, parent mobile {PHONE:IN:intl}",
    # PAN
    "Kindly share the invoice with our PAN {PAN} mentioned, else TDS will apply.",
    "PAN: {PAN}\nAssessment year: 2024-25\nStatus: Individual",
    "yaar mera PAN {PAN} hai, 26AS download nahi ho raha",
    "Please note the PAN on the policy should be {PAN}, not the old one.",
    "Landlord's PAN for HRA claim: {PAN} (rent above 1 lakh)",
    # Canadian SIN
    "Hey, HR here – we still need your social insurance number. You wrote {SIN} but please confirm.",
    "SIN {SIN}\nPayroll start: Jan 6\nBank: direct deposit",
    "Mon NAS est {SIN}, pouvez-vous corriger le relevé?",
    "my social insurance # is {SIN} for the EI application",
    "Service Canada letter re: SIN {SIN}, please call me.",
    # Canadian health numbers
    "Health card number {CAH:ohip}, please update my address at the clinic.",
    "PHN {CAH:bc} – booking a flu shot at the pharmacy",
    "OHIP # {CAH:ohip}, family doctor Dr. Singh",
    "Hi, my Ontario health card number is {CAH:ohip}, it says invalid online",
    "BC personal health number: {CAH:bc}\nMSP coverage since 2019",
    # IBAN
    "Kannst du mir die 45 € auf {IBAN:DE:compact} schicken? Danke!",
    "Nuestros datos bancarios: IBAN {IBAN:ES:space4}\nTitular: Cafetería El Sol S.L.",
    "Payment details\nAccount name: M. Rossi\nIBAN: {IBAN:IT:space4}",
    "Rekeningnummer: {IBAN:NL:compact} t.n.v. J. de Vries",
    "Please wire the retainer to IBAN {IBAN:CH:break}\nreference: case 88.",
    "Bankverbindung {IBAN:AT:dash4} – Verwendungszweck Miete März",
    "salary goes to {IBAN:PL:space4} from now on, the old account is closed",
    "Merci de rembourser sur mon compte {IBAN:LU:lower}",
    # SWIFT
    "Our bank's SWIFT code is {SWIFT:11}; correspondent bank details below.",
    "BIC: {SWIFT:8}\nBank name: Banque du Nord",
    "Can you confirm the swift is {SWIFT} before I send the wire?",
    "Código SWIFT/BIC: {SWIFT}",
    "Für Auslandsüberweisungen: BIC {SWIFT:11} und IBAN {IBAN:DE:space4}",
    # Passport
    "Please add my passport details to the booking: passport {PASS:US}, nationality USA.",
    "Número de pasaporte {PASS:ES}, caduca en 2029.",
    "Visa application – passport no. {PASS:CA}, issued Ottawa.",
    "Il mio numero di passaporto è {PASS:IT}.",
    "Guest list for the yacht: Mr Shah, passport number {PASS:IN}; Ms Cole, passport {PASS:GB}",
    # Driver ID
    "Driver license number {DL:US-CA} (California), class C",
    "For the car hire I'll need your driving licence number – mine is {DL:GB}.",
    "Mera driving licence no {DL:IN} hai, challan galat aaya hai",
    "Permis de conduire n° {DL:FR}, catégorie B",
    "Insurance quote: main driver, UK driving licence no. {DL:GB}, no claims 5 years",
    # German Steuer-ID
    "Hallo, ich habe meine Steuer-Identifikationsnummer gefunden: {IDNR}.",
    "Tax ID (Germany): {IDNR} – needed for the Lohnsteuerbescheinigung",
    "IdNr: {IDNR}\nFinanzamt: Köln-Mitte",
    "Für den Kindergeldantrag brauche ich die Steuer-ID von Max: {IDNR}",
    "Neue Mitarbeiterin, Steuer-ID {IDNR}, Eintritt zum 1.",
    # Spanish DNI / NIE
    "Mi NIE es {ESID:nie}, ¿me podéis dar de alta en la Seguridad Social?",
    "Datos del cliente – DNI: {ESID:dni}\nDirección: C/ Mayor 5, Madrid",
    "Spanish ID card number (DNI) {ESID:dni}, please add to the rental agreement.",
    "envío a nombre de Pablo, dni {ESID:dni}",
    "Número de identidad de extranjero {ESID:nie} – cita para la huella",
    # French NIR
    "Numéro de sécurité sociale: {NIR}\nCaisse: CPAM de Paris",
    "Hi, my French social security number is {NIR} for the health insurance claim.",
    "mon n° INSEE {NIR} apparaît mal sur la fiche de paie",
    "Carte Vitale : {NIR}. Merci de mettre à jour mon dossier.",
    "Bonjour, pour l'arrêt maladie de mon fils, NIR {NIR}",
    # Italian codice fiscale
    "Codice Fiscale: {CF}\nPartita IVA: non applicabile",
    "ciao, per l'iscrizione mi serve il tuo codice fiscale, il mio è {CF}",
    "Italian fiscal code {CF} – please add it to the invoice for my employer.",
    "Il CF {CF} non corrisponde all'anagrafica, potete verificare?",
    "Ricetta elettronica per {CF}, farmaco da ritirare entro venerdì",
    # Dutch BSN
    "Hallo, het burgerservicenummer van mijn dochter is {BSN}.",
    "BSN: {BSN}\nZorgverzekeraar: Zilveren Kruis",
    "For the gemeente registration they asked for my BSN – it's {BSN}.",
    "Kun je mijn BSN ({BSN}) doorsturen naar de belastingadviseur?",
    "Aanvraag kinderopvangtoeslag, BSN partner {BSN}",
    # Polish PESEL
    "PESEL: {PESEL}\nAdres: ul. Długa 4, Gdańsk",
    "Dzień dobry, podaję numer PESEL {PESEL} do wniosku.",
    "The Polish candidate's PESEL is {PESEL}; background check pending.",
    "Proszę wpisać mój pesel {PESEL} na fakturze.",
    "Zgłoszenie do ZUS – pracownik PESEL {PESEL}, umowa od marca",
    # Swedish personnummer
    "Personnummer: {SEPN}\nAdress: Storgatan 3, Uppsala",
    "Hi, my Swedish personnummer is {SEPN}, can you register me for the course?",
    "Hej, kan ni uppdatera min adress? Personnummer {SEPN}.",
    "Patient med personnummer {SEPN}, tid bokad 10:15.",
    "Swedish ID number for the bank (personnummer): {SEPN}",
    # Phone
    "You can reach me on {PHONE:GB:national} any time after lunch.",
    "Tel.: {PHONE:DE:intl}\nFax: nicht vorhanden",
    "Mi número es el {PHONE:ES:national}, llámame por la tarde.",
    "bhai call kar {PHONE:IN:national} pe, urgent hai",
    "Hotel reception {PHONE:IT:00}, my mobile {PHONE:FR:intl}",
    "Bel me even op {PHONE:NL:intl} als het pakket er is.",
    "Toronto office: {PHONE:CA:national}",
    "Ring mig på {PHONE:SE:intl} imorgon",
    # Email
    "Drop me a line: {EMAIL}",
    "email is {EMAIL:at} (spam filter eats the at sign)",
    "Kontakt: {EMAIL:idn}",
    "write to {EMAIL:paren} please",
    "Mon adresse : {EMAIL:words}",
    "cc {EMAIL} and {EMAIL} on the thread",
    # forms with several identifiers
    "Hotel registration card\nGuest: Sofia Marino\nPassport: {PASS:IT}\nPhone: {PHONE:IT:intl}\nEmail: {EMAIL}",
    "Payroll change request – employee: Ananya Rao, PAN {PAN}, Aadhaar {AAD}, salary account moved.",
    "Factura 2025/118 · Forma de pago: transferencia a {IBAN:ES:space4} · BIC {SWIFT}",
    "HR note: Tom Reid (Glasgow), NINO {NINO}, NHS no {NHS}, emergency contact {PHONE:GB:intl}",
    "Canadian employee file: SIN {SIN}; provincial health PHN {CAH:bc}; email {EMAIL}",
    "Loonstrook gegevens – BSN {BSN}, IBAN {IBAN:NL:dash4}",
    "Dossier : NIR {NIR}, IBAN {IBAN:FR:space4}, tél {PHONE:FR:national}",
    "Mietvertrag: Mieterin Lena Vogel, Steuer-ID {IDNR}, Kaution auf {IBAN:DE:space4}",
    "Självdeklaration: personnummer {SEPN}, e-post {EMAIL:idn}",
    "Datos de reserva: pasaporte {PASS:ES}, DNI {ESID:dni}, móvil {PHONE:ES:intl}",
    # look-alikes
    "Order no. {N:9} – refund issued to your original payment method.",
    "Rechnung RE-{N:6} vom {DATE}, Betrag 89,90 €",
    "The textbook is ISBN {ISBN}, second edition.",
    "[{TS}] INFO request_id={N:12} latency=212ms",
    "Please upgrade the agent to {VER}, the old build {N:6} leaks memory.",
    "Your parcel {TRACK} is out for delivery.",
    "Invalid NHS number entered: {BAD:NHS}. Please check and try again.",
    "IBAN {BAD:IBAN} returns an error in the banking app.",
    "PAN {BAD:PAN} galat format bata raha hai",
    "Contract {A:2}-{N:4}-{N:4}, signed 14 March 2025",
    "Numéro de commande : {N:12}, livraison le {DATE}",
    "Pedido {N:8} – el repartidor no encontró la dirección",
    "SIN {BAD:SIN} doesn't pass validation on the CRA site",
    "Steuer-ID {BAD:IDNR} ist laut ELSTER ungültig",
    "Build {VER}-rc{N:1} tagged at {TS}",
    "Numero pratica {N:7}/{N:2}, protocollo del {DATE}",
    "Personnummer {BAD:SEPN} godkänns inte av systemet",
    "Ticket {A:3}-{N:6}: printer on floor 3 jams on duplex.",
    "Aadhaar {BAD:AAD} ke saath OTP fail, number galat hai shayad",
    "Warehouse slot {A:1}{N:2}-{N:3}, pallet {N:10}",
    "Mój PESEL {BAD:PESEL} jest odrzucany przez formularz",
    "Bestelnummer {N:10}, verwachte levering {DATE}",
]

# Context written less directly: a table header, the word after the number, a word further back, no context
# word where the identifier's shape is distinctive. Kept apart (``style``: "indirect") so both are reported.
DEV_INDIRECT = [
    "Name        NI number      Start\nR. Patel    {NINO}      03/03",
    "{NINO} is my national insurance, the one on the P45 was wrong",
    "My GP surgery asked for my NHS number. It's on the letter: {NHS}",
    "Re: self assessment for 2024. My reference is {UTR} and I'm still waiting for the calculation.",
    "Aadhaar aur PAN dono bhej raha hoon: {AAD} aur {PAN}",
    "Here are my details for the tax slip.\nSocial insurance: {SIN}",
    "Attached a photo of my health card (Ontario). The number is {CAH:ohip}.",
    "Banking details for the deposit refund –\naccount holder: Sanne de Vries\naccount: {IBAN:NL:space4}",
    "Wire instructions: beneficiary Acme GmbH, bank Commerzbank Frankfurt, code {SWIFT:11}, ref INV-2291",
    "Travel docs for Maria: passport expires 2027, number {PASS:ES}",
    "Licence details – driving licence issued by DVLA, number {DL:GB}",
    "Die Steuer-ID steht auf dem Brief vom Finanzamt: {IDNR}",
    "Datos: Lucía Gómez / {ESID:dni} / Valencia",
    "Numéro de sécu de ma fille (elle a 3 ans) : {NIR}",
    "Anagrafica: Bianchi Luca – {CF} – nato a Milano",
    "Mijn burgerservicenummer staat ook op mijn paspoort: {BSN}",
    "Dane do umowy: Jan Kowalski, ur. 1985, PESEL {PESEL}",
    "Jag bor i Malmö, pnr {SEPN}",
    "If nobody answers, ring the front desk: {PHONE:GB:intl0}",
    "E-Mail bitte an {EMAIL:at} – die normale Adresse wird geblockt",
]

TEST_INDIRECT = [
    "Employee | NINO | Dept\nK. Osei | {NINO} | Finance",
    "{NHS} – that's the NHS number on my mum's letter",
    "UTR? It's {UTR}.",
    "AADHAAR: {AAD}\nPAN: {PAN}\nBank a/c: pending",
    "{SIN} is my social insurance number, sorry I forgot to add it",
    "Patient details – health card (BC) {CAH:bc}, DOB 1988",
    "account for the refund is\n{IBAN:FR:space4}\nthanks",
    "Our bank: ING Belgium, Brussels — BIC code {SWIFT:8}",
    "Name as on passport: Arjun Mehta. Passport {PASS:IN}, issued Mumbai",
    "Licence no. (driving): {DL:GB}",
    "{IDNR} – das ist meine Steuer-ID",
    "Mi nombre es Carlos y mi documento es {ESID:dni}",
    "Votre numéro de sécurité sociale figure sur votre carte Vitale : {NIR}",
    "Fattura intestata a: Rossi Maria, {CF}",
    "{BSN} (BSN) graag vermelden",
    "Mam na imię Ola, PESEL mam {PESEL}",
    "Uppgifter: Anna Lind, {SEPN}, Göteborg",
    "Mit freundlichen Grüßen\nJonas Weber\nTel.: {PHONE:DE:intl0}",
    "Mail an {EMAIL:paren} oder einfach anrufen",
]

SLOT = re.compile(r"\{([A-Z]+)((?::[^}:]+)*)\}")


def fill(rng: random.Random, frame: str) -> dict:
    text, spans, at = "", [], 0
    for m in SLOT.finditer(frame):
        text += frame[at:m.start()]
        value, label = write_slot(rng, m.group(1), [o for o in m.group(2).split(":") if o])
        if label:
            spans.append([len(text), len(text) + len(value), label])
        text += value
        at = m.end()
    text += frame[at:]
    return {"text": text, "spans": spans, "kind": "identifier" if spans else "lookalike"}


def build(frames: list[str], split: str, seed: int, indirect: list[str]) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    for i, frame in enumerate(frames + indirect):
        for _ in range(COPIES):
            for _ in range(50):  # a copy must differ from the other one
                row = fill(rng, frame)
                if row["text"] not in seen:
                    break
            seen.add(row["text"])
            row["frame"] = f"{split}-{i}"
            row["style"] = "indirect" if i >= len(frames) else "direct"
            rows.append(row)
    return rows


CHECKED = {LABELS[k]: v for k, v in VALIDATORS.items()} | {
    "CA_SOCIAL_INSURANCE_NUMBER": sin.is_valid,
    "CA_HEALTH_NUMBER": lambda n: bc_phn.is_valid(n) if n.startswith("9") else luhn.is_valid(n),
    "SWIFT_CODE": bic.is_valid,
    "UK_NATIONAL_INSURANCE_NUMBER": lambda n: re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", n) is not None,
}


def check(rows: list[dict]) -> None:
    """Every labelled span re-validates from the text alone; spans are non-empty and inside the text."""
    for row in rows:
        for start, end, label in row["spans"]:
            value = row["text"][start:end]
            assert 0 <= start < end <= len(row["text"]) and value == value.strip(), (row, label)
            compact = re.sub(r"[\s.\-]", "", value).upper()
            if label in CHECKED:
                assert CHECKED[label](compact), (label, value)
            elif label == "PHONE" and value.startswith(("+", "00")):
                assert phonenumbers.is_valid_number(phonenumbers.parse("+" + value.lstrip("+").removeprefix("00"))), value


def decontaminate(rows: list[dict]) -> None:
    """Fail when a text equals or nearly duplicates an evaluation text (../shared/decontam)."""
    sys.path.insert(0, str(HERE.parents[2] / "shared" / "decontam"))
    from decontam import Overlap  # noqa: PLC0415

    overlap = Overlap()
    hits = [r["frame"] for r in rows if overlap(r["text"])]
    if hits:
        raise SystemExit(f"{len(hits)} texts overlap the evaluation sets: frames {sorted(set(hits))}")


def main() -> int:
    assert not set(DEV_FRAMES + DEV_INDIRECT) & set(TEST_FRAMES + TEST_INDIRECT)
    for split, frames, indirect, seed in (("dev", DEV_FRAMES, DEV_INDIRECT, SEED),
                                          ("test", TEST_FRAMES, TEST_INDIRECT, SEED + 1)):
        rows = build(frames, split, seed, indirect)
        check(rows)
        decontaminate(rows)
        path = HERE / f"international_pii_heldout_{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        labels: dict[str, int] = {}
        for r in rows:
            for lab in {s[2] for s in r["spans"]}:
                labels[lab] = labels.get(lab, 0) + 1
        look = sum(r["kind"] == "lookalike" for r in rows)
        print(f"{path.name}: {len(rows)} cases, {look} look-alikes; cases per label: {dict(sorted(labels.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
