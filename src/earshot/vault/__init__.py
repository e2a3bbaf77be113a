"""The vault: envelope encryption of everything sensitive (audio, transcripts) at rest."""
