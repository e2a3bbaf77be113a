"""The de-identification pipeline: decode -> segment -> asr -> pii -> redact -> voice."""
