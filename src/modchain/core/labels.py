"""The label names configs and findings use: Amazon Comprehend's, so a config means the same on every backend."""

from __future__ import annotations

__all__ = ["COMPREHEND_PII_LABELS", "EU_PII_LABELS", "PII_LABELS", "TOXICITY_LABELS"]

#: Amazon Comprehend's toxicity labels; every toxicity backend reports these names.
TOXICITY_LABELS: tuple[str, ...] = (
    "PROFANITY",
    "HATE_SPEECH",
    "INSULT",
    "GRAPHIC",
    "HARASSMENT_OR_ABUSE",
    "SEXUAL",
    "VIOLENCE_OR_THREAT",
)


#: Amazon Comprehend's PII entity types; every PII backend reports these names.
COMPREHEND_PII_LABELS: frozenset[str] = frozenset({
    "ADDRESS", "AGE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "BANK_ACCOUNT_NUMBER", "BANK_ROUTING",
    "CA_HEALTH_NUMBER", "CA_SOCIAL_INSURANCE_NUMBER", "CREDIT_DEBIT_CVV", "CREDIT_DEBIT_EXPIRY",
    "CREDIT_DEBIT_NUMBER", "DATE_TIME", "DRIVER_ID", "EMAIL", "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "IN_AADHAAR",
    "IN_NREGA", "IN_PERMANENT_ACCOUNT_NUMBER", "IN_VOTER_NUMBER", "IP_ADDRESS", "LICENSE_PLATE", "MAC_ADDRESS",
    "NAME", "PASSPORT_NUMBER", "PASSWORD", "PHONE", "PIN", "SSN", "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER", "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "URL", "USERNAME",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "VEHICLE_IDENTIFICATION_NUMBER",
})

#: EU national identifiers, which Comprehend does not detect: the local backend names them after Comprehend's
#: pattern, ``<ISO country>_<the identifier's English name>`` (see docs/international_pii.md).
EU_PII_LABELS: frozenset[str] = frozenset({
    "DE_TAX_IDENTIFICATION_NUMBER", "ES_NATIONAL_IDENTITY_NUMBER", "FR_SOCIAL_SECURITY_NUMBER", "IT_FISCAL_CODE",
    "NL_CITIZEN_SERVICE_NUMBER", "PL_NATIONAL_IDENTIFICATION_NUMBER", "SE_PERSONAL_IDENTITY_NUMBER",
})

#: Every PII label a filter may name. A PII filter's own ``recognizers`` may add more (see PiiConfig).
PII_LABELS: frozenset[str] = COMPREHEND_PII_LABELS | EU_PII_LABELS
