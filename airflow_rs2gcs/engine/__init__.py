"""The transfer engine: reader (cursor batches) -> encoders -> uploader -> manifest (published last)."""
