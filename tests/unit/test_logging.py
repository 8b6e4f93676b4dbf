"""Logs are JSON lines and carry the ids of the message being handled."""

import json
import logging

from eventkit.logging import bind_message_context, configure_logging, get_logger


def test_log_lines_are_json_with_correlation_and_causation_ids(capsys) -> None:
    configure_logging("INFO", json_output=True)
    with bind_message_context(correlation_id="req-42", causation_id="evt-7", topic="vn.cchc.dossiers.inbound"):
        get_logger("chiso.test").info("dossier stored", dossier_id="000.31.20.H56-260213-0007")
    get_logger("chiso.test").warning("outside any message")
    logging.getLogger("aiokafka.consumer").warning("from the standard library")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3
    first = lines[0]
    assert first["event"] == "dossier stored"
    assert first["level"] == "info"
    assert first["correlation_id"] == "req-42"
    assert first["causation_id"] == "evt-7"
    assert first["dossier_id"] == "000.31.20.H56-260213-0007"
    assert "timestamp" in first
    assert "correlation_id" not in lines[1]  # the context ends with the block
    assert lines[2]["logger"] == "aiokafka.consumer"
    assert lines[2]["level"] == "warning"


def test_the_access_log_can_be_turned_off(capsys) -> None:
    # uvicorn writes its per-request line only when the access logger has a handler (checked per connection)
    configure_logging("INFO", json_output=True)
    assert logging.getLogger("uvicorn.access").hasHandlers()
    logging.getLogger("uvicorn.access").info("GET /ready 200")
    configure_logging("INFO", json_output=True, access=False)
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    logging.getLogger("uvicorn.access").info("GET /ready 200")
    logging.getLogger("uvicorn.error").info("still logged")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("uvicorn.access", "GET /ready 200"),
        ("uvicorn.error", "still logged"),
    ]
    configure_logging("INFO", json_output=True)
