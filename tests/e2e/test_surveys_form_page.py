"""The public form page of a QR link, rendered and submitted in headless Chromium (Debian's package), on a
phone-sized screen, against the running service (real PostgreSQL and Kafka): a missing answer is shown next
to its question, a completed form stores exactly one response bound to the dossier of the link.

Chromium is driven over the DevTools protocol (a websocket): no browser download, no driver."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import websockets

from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.surveys.app import build_app
from services.surveys.catalog import load_catalog
from services.surveys.domain import response_id_for_dossier
from services.surveys.settings import SurveysSettings
from services.surveys.tokens import LinkClaims, LinkSigner
from tests.e2e.serving import serve

pytestmark = pytest.mark.e2e
KEY = "e2e-form-link-key-0123456789"


class DevTools:
    """The smallest DevTools client: commands on one page session, answers matched by id."""

    def __init__(self, socket: Any, session: str | None = None) -> None:
        self._socket = socket
        self._session = session
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if self._session:
            message["sessionId"] = self._session
        await self._socket.send(json.dumps(message))
        while True:
            answer = json.loads(await asyncio.wait_for(self._socket.recv(), 30))
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer["result"])

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within_s: float = 20) -> Any:
        deadline = asyncio.get_running_loop().time() + within_s
        while asyncio.get_running_loop().time() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"page never satisfied: {expression}")

    async def tap(self, selector: str) -> None:
        """A real pointer click (touch-sized screen) in the middle of the element."""
        box = await self.evaluate(
            f"(function(){{var e=document.querySelector({json.dumps(selector)});e.scrollIntoView({{block:'center'}});"
            "var r=e.getBoundingClientRect();return [r.x+r.width/2,r.y+r.height/2];})()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


@contextlib.asynccontextmanager
async def chromium(workdir: Path) -> AsyncIterator[DevTools]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium is needed (apt-get install chromium; .ci/run installs it)"
    process = await asyncio.create_subprocess_exec(
        binary,
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={workdir}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        endpoint = None
        while endpoint is None:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, "chromium exited before it opened the DevTools endpoint"
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = found.group(1) if found else None
        async with websockets.connect(endpoint, max_size=50_000_000) as socket:
            browser = DevTools(socket)
            target = await browser.send("Target.createTarget", url="about:blank")
            attached = await browser.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
            page = DevTools(socket, attached["sessionId"])
            await page.send("Page.enable")
            await page.send("Runtime.enable")
            yield page
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@pytest_asyncio.fixture
async def service(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[str]:
    shell = ServiceSettings(
        "surveys",
        "surveys",
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=fresh_database),
        LogSettings(level="WARNING"),
    )
    async with serve(build_app(SurveysSettings(token_secret=KEY), shell)) as url:
        yield url


async def test_the_qr_form_renders_on_a_phone_and_submits_one_response(service, fresh_database, tmp_path) -> None:
    dossier = f"000.00.01.H26-260302-{uuid.uuid4().hex[:6]}"
    claims = LinkClaims(dossier, "00004", "qr", datetime.now(UTC) + timedelta(days=7), None, "1.001776")
    url = f"{service}/s/{LinkSigner(KEY.encode()).issue(claims)}"
    instrument = load_catalog().in_force("sipas-service", datetime.now(UTC).date())
    assert instrument is not None
    shown = [i for i in instrument.items() if not i.needs_policy_group]
    async with chromium(tmp_path / "profile") as page:
        await page.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=3, mobile=True)
        await page.send("Page.navigate", url=url)
        await page.wait_for("document.readyState==='complete' && !!document.getElementById('survey')")
        assert await page.evaluate("document.documentElement.lang") == "vi"
        assert await page.evaluate("document.querySelector('button[type=submit]').textContent") == "Gửi đánh giá"
        rendered = await page.evaluate("Array.from(document.querySelectorAll('[data-item]')).map(e=>e.dataset.item)")
        assert rendered == [i.id for i in shown] + [
            "respondent.type",
            "respondent.age_band",
            "respondent.sex",
            "respondent.ethnicity",
        ]
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling

        # every question answered with its first choice, as the instrument file lists them, except one
        skipped = "overall.satisfaction"
        for item in [*shown, *("respondent." + f for f in ("type", "age_band", "sex"))]:
            name = item if isinstance(item, str) else item.id
            if name != skipped:
                await page.tap(f'[data-item="{name}"] label')
        await page.tap("button[type=submit]")
        error = await page.wait_for(f"document.getElementById('err-{skipped}').textContent")
        assert error == "Vui lòng trả lời câu này."

        await page.tap(f'[data-item="{skipped}"] label:nth-of-type(4)')  # "Hài lòng" (4)
        await page.tap("button[type=submit]")
        thanks = await page.wait_for(
            "document.getElementById('result').className==='ok' && document.getElementById('result').textContent"
        )
        assert thanks.startswith("Cảm ơn")
        screenshot = await page.send("Page.captureScreenshot", format="png")
        png = base64.b64decode(screenshot["data"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (tmp_path / "form.png").write_bytes(png)

        # the link cannot be used twice: the page now says the dossier was rated
        await page.send("Page.navigate", url=url)
        await page.wait_for("document.readyState==='complete' && document.title==='Hồ sơ đã được đánh giá'")

    conn = await asyncpg.connect(fresh_database)
    try:
        rows = await conn.fetch(
            "SELECT data::text FROM surveys.es_events WHERE stream_id = $1", response_id_for_dossier(dossier)
        )
    finally:
        await conn.close()
    assert len(rows) == 1
    data = json.loads(rows[0]["data"])
    assert data["channel"] == "qr"
    assert data["linked_dossier_id"] == dossier
    assert data["ma_tthc"] == "1.001776"
    answers = {a["item_id"]: a["value"] for a in data["answers"]}
    assert answers["overall.satisfaction"] == 4
    assert answers["access.satisfaction"] == 1  # "Rất không hài lòng", first as in the file
    assert answers["access.waiting_area_sufficient"] == 1  # "Đồng ý"
    assert answers["integrity.bribe_asked"] == "no"
    assert answers["expectations"] == ["access"]
    assert data["respondent"] == {"type": "citizen", "age_band": "18-29", "sex": "male", "ethnicity": None}
