"""Natural-language stages: normalisation, language, classification, PII redaction."""
