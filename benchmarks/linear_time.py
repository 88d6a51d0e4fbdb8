"""Linear time: every offline PII recognizer (per label) and every offline detector on inputs growing 10x.

Issue 14's bar: the time ratio t(10n) / t(n) stays near 10 (within 2x: <= 20). Each row builds one input of
about ``--size`` characters (default 24,000) and one 10x as long from the same generator, times the detector on
each (median of ``--repeats`` runs, default 5, alternating sizes) and prints t(n), t(10n) and the ratio. A ratio far above 10 means
work per candidate grows with the number of candidates (the ``"ip 10.0.0.1 " * 20000`` case took 9-17 s before
overlap resolution became linear).

Rows:
  pii:LABEL        ``find_pii(text, [LABEL])`` on text dense with that label's candidates: valid ones, near
                   misses and context words (IPs, emails, cards with a trailing CVV, phones, SSNs in every shape)
  pii:all/NAME     ``find_pii(text)`` (every label) on adversarial shapes: long digit runs, "@@@@", "1.1.1.1...",
                   dotted runs that look like domains, URLs followed by punctuation, colons, "+1 " runs
  toxicity         ``score_toxicity`` (local backend) on prose mixed with PII
  prompt_safety    ``score_prompt_safety`` (local backend) on the same
  moderation_chain ``ModerationChain().moderate(text)``, default config (PII redact, toxicity, prompt safety)
  document_guard   ``DocumentGuard().moderate_documents([Document(text)])``, default config, at n / 5

Run:  python benchmarks/linear_time.py [--size 24000] [--repeats 5] [--only SUBSTRING] [--detector-size 20000]
Exit status 1 if any ratio is above 20. The whole run takes about a minute (on a loaded 2-core box).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modchain.backends.local.pii_recognizers import SUPPORTED_PII_LABELS, find_pii  # noqa: E402

BAR = 20.0


def repeat_to(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# One unit per label: valid candidates, near misses, and the context words that make scoring look around.
PII_UNITS = {
    "SSN": "ssn 536-22-1234, social security 123-456789 and 12345-6789; order 412557890 zip 94107-1234 "
           "ssn 287654321 ",
    "CREDIT_DEBIT_NUMBER": "card 5500 0055 5555 5559 99 and 4111-1111-1111-1111 12/26, cards 4242424242424242,"
                           "5105105105105100 bad 4111 1111 1111 1112 1234 5678 ",
    "EMAIL": "mail jo.chen@example.com or user@xn--bcher-kva.example, x@@@@y a@b ..@.. logo@2x.png ",
    "URL": "see https://example.com/a_(b)).. www.wiki.org/x, example.com/path a.com.b.com- http://x.io/?q=1 ",
    "PHONE": "call (415) 555-2671 or +44 20 7946 0958, mobile 07700 900982, fax 612 345 678 order 0412 345 678 ",
    "IP_ADDRESS": "ip 10.0.0.1 host ::ffff:192.0.2.128 64:ff9b::198.51.100.7 v1.2.3.4 1.1.1.1.1.1 2001:db8::1 ",
    "MAC_ADDRESS": "nic 00:1A:2B:3C:4D:5E dev 001a.2b3c.4d5e 00:1A:2B:3C:4D ",
    "AWS_ACCESS_KEY": "aws key AKIAIOSFODNN7EXAMPLE ASIAIOSFODNN7EXAMPL ",
    "AWS_SECRET_KEY": "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY token abcdef ",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": "IBAN DE89 3704 0044 0532 0130 00, GB82 WEST 1234 5698 7654 33 ",
    "BANK_ROUTING": "routing 011000015 aba 021000022 rtn 0710-0001-3 ",
    # international identifiers (pii_international): valid values beside invalid check digits and look-alikes
    "UK_NATIONAL_INSURANCE_NUMBER": "NI number AB 12 34 56 C, nino HK310839B, QQ 12 34 56 C, ab123456e ",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER": "NHS number 912 916 9240, nhs 912 916 9241, 1752335708 ",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER": "UTR 32962 58620, self assessment 6088981266, 6088981267 ",
    "IN_AADHAAR": "Aadhaar 6413 7102 9573, uid 7724-0601-2818, 6413 7102 9574, 641371029573 ",
    "IN_PERMANENT_ACCOUNT_NUMBER": "PAN ADVPJ4395E, ADVPJ4395, ADVXJ4395E ",
    "CA_SOCIAL_INSURANCE_NUMBER": "SIN 046 454 286, social insurance 130-692-544, 130 692 545 ",
    "CA_HEALTH_NUMBER": "OHIP 1363-746-320-NE, health card 7990-993-870, RAMQ TREM 8012 3412 ",
    "DE_TAX_IDENTIFICATION_NUMBER": "Steuer-ID 70 289 346 617, idnr 46801535924, 46801535925 ",
    "FR_SOCIAL_SECURITY_NUMBER": "NIR 2 93 05 52 390 789 57, 100027814080945, 2 93 05 52 390 789 58 ",
    "ES_NATIONAL_IDENTITY_NUMBER": "DNI 27134864Q, NIE Z4234798C, 27134864A ",
    "IT_FISCAL_CODE": "codice fiscale PFDOGC30R63H991H, PFDOGC30R63H991A ",
    "NL_CITIZEN_SERVICE_NUMBER": "BSN 8718.66.997, bsn 291696272, 291696273 ",
    "PL_NATIONAL_IDENTIFICATION_NUMBER": "PESEL 38312552669, pesel 38312552660 ",
    "SE_PERSONAL_IDENTITY_NUMBER": "personnummer 580120-5260, 580120-5261, 5801205260 ",
    "SWIFT_CODE": "SWIFT DEUTDEFF500, bic NWBKGB2L, ABCDEFGH ",
    "PASSPORT_NUMBER": "passport F86742715, passport photo, passport 43EM48692 ",
    "DRIVER_ID": "driver's license D1234567, DL 447 109 486 CA, licence number MORGA753116SM9IJ ",
}
assert set(PII_UNITS) == set(SUPPORTED_PII_LABELS), "a label has no benchmark row"

# Whole inputs of one pathological shape; every recognizer runs on each.
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "digit_run": lambda n: "1" * n,
    "spaced_digits": lambda n: repeat_to("1 ", n),
    "card_groups": lambda n: repeat_to("4111 ", n),
    "at_signs": lambda n: repeat_to("a@@@@", n),
    "dotted_ones": lambda n: repeat_to("1.", n),
    "dotted_domain": lambda n: repeat_to("a.", n) + "com",
    "domain_chain": lambda n: repeat_to("a.com.", n) + "-",
    "url_parens": lambda n: "http://a.io/" + ")" * n,
    "url_dots": lambda n: "http://a.io/" + "." * n,
    "colons": lambda n: repeat_to("1:", n),
    "plus_ones": lambda n: repeat_to("+1 ", n),
    "iban_groups": lambda n: repeat_to("GB82 ", n),
    "email_labels": lambda n: "a@" + repeat_to("a-", n) + ".com",
}

PROSE = ("Hi team, the export finished overnight and the report is attached. Please review the totals before "
         "Friday and let me know if anything looks off; contact jo.chen@example.com or call (415) 555-2671. ")


def median_times(fn: Callable[[str], object], small: str, big: str, repeats: int) -> tuple[float, float]:
    """Median time on each input; the runs alternate, so a burst of machine load hits both sizes alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for text, out in ((small, times[0]), (big, times[1])):
            t0 = time.perf_counter()
            fn(text)
            out.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def rows(size: int, detector_size: int) -> list[tuple[str, Callable[[str], object], Callable[[int], str], int]]:
    out: list[tuple[str, Callable[[str], object], Callable[[int], str], int]] = []
    for label, unit in PII_UNITS.items():
        out.append((f"pii:{label}", lambda t, lb=label: find_pii(t, [lb]), lambda n, u=unit: repeat_to(u, n), size))
    for name, gen in ADVERSARIAL.items():
        out.append((f"pii:all/{name}", find_pii, gen, size))
    out.append(("pii:all/mixed", find_pii, lambda n: repeat_to("".join(PII_UNITS.values()), n), size))

    from modchain.backends.local.prompt_safety_heuristics import score_prompt_safety
    from modchain.backends.local.toxicity_lexicon import score_toxicity

    def prose(n: int) -> str:
        return repeat_to(PROSE, n)

    out.append(("toxicity", score_toxicity, prose, detector_size))
    out.append(("prompt_safety", score_prompt_safety, prose, detector_size))
    from modchain import ModerationChain

    chain = ModerationChain()
    out.append(("moderation_chain", chain.moderate, prose, detector_size))
    try:
        from langchain_core.documents import Document

        from modchain.text.documents import DocumentGuard
    except ImportError:  # pragma: no cover - the langchain extra is not installed
        return out
    guard = DocumentGuard()
    # A fifth of the size: it scores sentence windows with a model, ~50 ms per KB; 10x still shows growth.
    out.append(("document_guard", lambda t: guard.moderate_documents([Document(t)]), prose, detector_size // 5))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=24_000, help="n for the PII rows, in characters")
    parser.add_argument("--detector-size", type=int, default=20_000, help="n for the detector rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="run only rows whose name contains this")
    args = parser.parse_args(argv)

    print(f"{'row':<42} {'n':>8} {'t(n) ms':>10} {'t(10n) ms':>10} {'ratio':>7}")
    failed = []
    started = time.perf_counter()
    for name, fn, gen, n in rows(args.size, args.detector_size):
        if args.only not in name:
            continue
        small, big = gen(n), gen(10 * n)
        fn(small[:2000])  # warm-up: lazy model loads and caches out of the timing
        t_small, t_big = median_times(fn, small, big, args.repeats)
        ratio = t_big / t_small if t_small > 0 else float("inf")
        flag = "" if ratio <= BAR else "  <-- above 20x"
        if flag:
            failed.append(name)
        print(f"{name:<42} {len(small):>8} {t_small * 1e3:>10.1f} {t_big * 1e3:>10.1f} {ratio:>7.1f}{flag}", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s; bar: ratio <= {BAR:.0f} (linear is ~10)."
          + (f" Above the bar: {', '.join(failed)}" if failed else " All rows within the bar."))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
