"""The dossiers service: where one-stop-shop software hands chiso its dossier facts (hồ sơ TTHC)."""
