"""The playground in a real browser: headless Chromium (Debian's `chromium` and `chromedriver`, which
.ci/run installs; nothing is downloaded) drives `oncall serve` in local mode as a person would. Each step
saves a screenshot under $ONCALL_TEST_ARTIFACTS (default test-artifacts/) / playground/.

Without Chromium the test is skipped, unless ONCALL_REQUIRE_BROWSER=1 (CI) makes that a failure."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.local.emulator.history import FILE_NAME as HISTORY_FILE
from bot.runner import OncallBot
from bot.settings import Settings
from engine.ml_service import MLService
from tests.bot.local.test_playground import REFUSED_CONFIG
from training.train import GateRefused, train

pytestmark = [pytest.mark.browser, pytest.mark.e2e]  # headless Chromium on the running bot

REPO = Path(__file__).resolve().parents[2]
HOSTILE = (
    "<javascript:document.body.dataset.pwned=1|click me> <https://ok.example/x|fine> "
    '&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt; *bold <b onclick="x">*'
)
TIMEOUT = 15.0  # seconds for anything the page waits on (the bot answers in milliseconds)


def _browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    paths = _browser_paths()
    if paths is None:
        if os.environ.get("ONCALL_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium and chromedriver are required (ONCALL_REQUIRE_BROWSER=1) but not on PATH")
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (a dev extra)")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a browser online
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _artifacts(*under: str) -> Path:
    """Where a test's screenshots go (emptied first): playground/, or a folder under it."""
    root = Path(os.environ.get("ONCALL_TEST_ARTIFACTS") or REPO / "test-artifacts") / "playground"
    root = root.joinpath(*under)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.png"):
        old.unlink()
    return root


# What of a message's header (author, badge, time) its hover bar covers: the elements' texts.
OVERLAPS = """
const message = arguments[0];
const bar = message.querySelector('.toolbar').getBoundingClientRect();
return [...message.querySelectorAll('.message-header > *')].filter((node) => {
  const r = node.getBoundingClientRect();
  return r.left < bar.right && bar.left < r.right && r.top < bar.bottom && bar.top < r.bottom;
}).map((node) => node.textContent);
"""
# Chart texts drawn past the edge of their chart (clipped), under `arguments[0]`: "chart: text".
CLIPPED = """
const out = [];
for (const chart of arguments[0].querySelectorAll('svg.chart')) {
  const box = chart.getBoundingClientRect();
  if (!box.width) continue;
  for (const text of chart.querySelectorAll('text')) {
    const r = text.getBoundingClientRect();
    const outside = r.left < box.left - 0.5 || r.right > box.right + 0.5;
    if (outside || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
      out.push(`${chart.dataset.testid}: ${text.textContent}`);
  }
}
return out;
"""


def walk_through(driver: Any, url: str, shots: Path) -> dict[str, Any]:
    """The steps of a first visit, as a person clicks them; returns what the page showed."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # The page re-renders a message whenever it changes (a reaction, an edit): an element found a moment
    # ago may be gone, so each wait looks again.
    wait = WebDriverWait(driver, TIMEOUT, ignored_exceptions=(StaleElementReferenceException,))
    step = iter(range(1, 100))

    def shot(name: str) -> None:
        driver.save_screenshot(str(shots / f"{next(step):02d}-{name}.png"))

    def until(condition: Callable[[Any], Any], what: str) -> Any:
        return wait.until(condition, message=f"the page never showed {what}")

    def app_reply() -> Any:
        return driver.find_element(By.CSS_SELECTOR, "#thread .message.from-app")

    seen: dict[str, Any] = {}
    driver.get(url + "/")
    until(lambda d: d.execute_script("return document.body.dataset.ready") == "true", "the workspace")
    until(lambda d: "live" in d.find_element(By.ID, "connection").text, "the live connection")
    shot("workspace")

    # An Alertmanager alert from the composer's template.
    Select(driver.find_element(By.ID, "post-as")).select_by_value("alertmanager")
    assert '"attachments"' in driver.find_element(By.ID, "composer-text").get_attribute("value")
    driver.find_element(By.ID, "send").click()
    link = until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages [data-testid=thread-link]"), "a thread"
    )
    seen["alert"] = driver.find_element(By.CSS_SELECTOR, "#messages .message.from-bot").text
    shot("alert-posted")

    # The decision in the thread, rendered from its Block Kit.
    link[0].click()
    until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .message.from-app .bk-actions"), "the decision")
    reply = app_reply()
    seen["decision"] = reply.text
    seen["selects"] = [
        s.get_attribute("data-action-id") for s in reply.find_elements(By.CSS_SELECTOR, "select")
    ]
    shot("decision-in-thread")

    # :+1: from the message's hover bar, which covers none of the message's header (its time).
    ActionChains(driver).move_to_element(reply).perform()
    seen["toolbar_overlaps"] = driver.execute_script(OVERLAPS, reply)
    reply.find_element(By.CSS_SELECTOR, "[data-quick-reaction='+1']").click()
    until(
        lambda d: app_reply().find_elements(By.CSS_SELECTOR, ".reaction.mine[data-reaction='+1']"), "the :+1:"
    )
    shot("thumbs-up")

    # The severity corrected with the select under the decision: the bot edits its message to say so.
    def correct(d: Any) -> bool:
        Select(
            app_reply().find_element(By.CSS_SELECTOR, "select[data-action-id=correct_severity]")
        ).select_by_value("low")
        return True

    until(correct, "the severity select")
    until(lambda d: "Corrected: severity → low" in app_reply().text, "the correction")
    seen["corrected"] = app_reply().text
    shot("severity-corrected")

    # /oncall-models reload from the composer, as the admin.
    Select(driver.find_element(By.ID, "post-as")).select_by_value("me")

    def command(text: str, answer_says: str) -> str:
        """Types a slash command in the composer; the private answer that says ``answer_says``."""
        box = driver.find_element(By.ID, "composer-text")
        box.clear()
        box.send_keys(text)
        driver.find_element(By.ID, "send").click()
        answers = until(
            lambda d: [
                m
                for m in d.find_elements(By.CSS_SELECTOR, "#messages .message.ephemeral")
                if answer_says in m.text
            ],
            f"the answer to {text}",
        )
        return answers[0].text

    seen["reload"] = command("/oncall-models reload", "")
    shot("models-reload")

    # A typo'd subcommand: answered at once, privately, with the closest valid one.
    seen["typo"] = command("/oncall-models stauts", "stauts")
    shot("typo-answered")

    # The same alert again: it joins the first one's group, and shows it with a reaction and a note.
    Select(driver.find_element(By.ID, "post-as")).select_by_value("alertmanager")
    driver.find_element(By.ID, "send").click()
    until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "#messages .message.from-bot .reaction[data-reaction=link]"
        ),
        "the grouped alert's marker",
    )
    grouped = driver.find_elements(By.CSS_SELECTOR, "#messages .message.from-bot")[-1]
    seen["grouped_reactions"] = [
        r.get_attribute("data-reaction") for r in grouped.find_elements(By.CSS_SELECTOR, ".reaction")
    ]
    grouped.find_element(By.CSS_SELECTOR, "[data-testid=thread-link]").click()
    note = until(
        lambda d: [
            m for m in d.find_elements(By.CSS_SELECTOR, "#thread .message") if "Grouped with" in m.text
        ],
        "the grouped alert's note",
    )
    seen["grouped_note"] = note[0].text
    shot("grouped-alert")

    # The models page: charts, the rating just given, and rolling back.
    driver.find_element(By.ID, "models-link").click()
    until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".version.serving [data-testid=chart-severity-confusion]"),
        "the charts",
    )
    until(lambda d: "👍 1" in d.find_element(By.CSS_SELECTOR, ".version.serving .ratings").text, "the rating")
    serving = driver.find_element(By.CSS_SELECTOR, ".version.serving")
    seen["charts"] = sorted(
        c.get_attribute("data-testid") for c in serving.find_elements(By.CSS_SELECTOR, "svg.chart")
    )
    seen["confusion_cells"] = len(
        serving.find_elements(By.CSS_SELECTOR, "[data-testid=chart-severity-confusion] rect")
    )
    seen["calibration_dots"] = len(
        serving.find_elements(By.CSS_SELECTOR, "[data-testid=chart-severity-calibration] circle")
    )
    seen["ratings"] = serving.find_element(By.CSS_SELECTOR, ".ratings").text
    seen["quality_labels"] = [
        q.text for q in serving.find_elements(By.CSS_SELECTOR, "[data-testid=quality-label]")
    ]
    seen["serving_before"] = driver.find_element(By.CSS_SELECTOR, "[data-testid=serving]").text
    seen["clipped_labels"] = driver.execute_script(CLIPPED, serving)
    shot("models-page")
    driver.find_element(By.CSS_SELECTOR, "[data-testid=rollback]").click()
    until(lambda d: "Rolled back" in d.find_element(By.ID, "model-result").text, "the rollback")
    until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=serving]").text != seen["serving_before"],
        "the new serving version",
    )
    seen["serving_after"] = driver.find_element(By.CSS_SELECTOR, "[data-testid=serving]").text
    shot("rolled-back")

    # A hostile alert in #alerts-prod: markup in it is shown as text, never run or followed.
    driver.find_element(By.CSS_SELECTOR, "a[data-channel=C0ALERTSPROD]").click()
    hostile = {
        "username": "Datadog",
        "attachments": [{"title": '<img src=x onerror="document.body.dataset.pwned=1">', "text": HOSTILE}],
    }
    driver.execute_async_script(
        "const done = arguments[1]; fetch('/playground/api/alerts', {method: 'POST', headers: "
        "{'Content-Type': 'application/json'}, body: JSON.stringify({source: 'datadog', channel: "
        "'C0ALERTSPROD', payload: arguments[0]})}).then(() => done());",
        hostile,
    )
    until(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages [data-testid=thread-link]"), "its decision")
    alert = driver.find_elements(By.CSS_SELECTOR, "#messages .message.from-bot")  # as drawn with its thread
    seen["hostile_text"] = alert[0].text
    seen["hostile_links"] = [a.get_attribute("href") for a in alert[0].find_elements(By.TAG_NAME, "a")]
    seen["hostile_images"] = len(driver.find_elements(By.CSS_SELECTOR, "#messages img"))
    seen["pwned"] = driver.execute_script("return document.body.dataset.pwned || null")
    shot("hostile-alert")
    seen["console_errors"] = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return seen


@pytest.mark.asyncio
async def test_a_first_visit_in_a_real_browser(local_bot: OncallBot, browser: Any) -> None:
    shots = _artifacts()
    seen = await asyncio.to_thread(walk_through, browser, local_bot.url, shots)

    assert "HighErrorRate" in seen["alert"]
    assert "Severity:" in seen["decision"] and "Recommended actions:" in seen["decision"]
    assert seen["selects"][:2] == ["correct_severity", "correct_category"]
    assert "Only visible to you" in seen["reload"] and "Reloaded" in seen["reload"]
    assert "Did you mean" in seen["typo"] and "/oncall-models status" in seen["typo"]
    assert seen["grouped_reactions"].count("link") == 1
    assert "Grouped with" in seen["grouped_note"]
    assert seen["charts"] == [
        f"chart-{label}-{kind}"
        for label in ("category", "severity")
        for kind in ("calibration", "confusion", "per-class")
    ]
    assert seen["confusion_cells"] == 16  # four severities, true by predicted
    assert seen["calibration_dots"] >= 2
    # What the numbers were measured on, as shown: real labeled rows first when the version had any, and
    # the synthetic rows' numbers never without the words that they do not show quality on real alerts.
    *real, synthetic = seen["quality_labels"]
    assert all(label.startswith("real labeled rows, n=") for label in real) and len(real) <= 1
    assert synthetic.startswith("synthetic rows, n=")
    assert synthetic.endswith("(not evidence of quality on real alerts)")
    assert seen["serving_after"] != seen["serving_before"]
    assert seen["console_errors"] == []
    assert seen["toolbar_overlaps"] == []
    assert seen["clipped_labels"] == []  # "resource exhaustion" among them
    assert len(list(shots.glob("*.png"))) == 11
    assert seen["pwned"] is None and seen["hostile_images"] == 0
    assert seen["hostile_links"] == ["https://ok.example/x"]  # the javascript: one is text
    assert '<img src=x onerror="document.body.dataset.pwned=1">' in seen["hostile_text"]
    assert "<script>document.body.dataset.pwned=1</script>" in seen["hostile_text"]

    # What the clicks did reached the store, as Slack's would: the :+1: and the correction, by Alice.
    store = local_bot.parts.store  # type: ignore[union-attr]
    (decision,) = [d for d in await store.decisions_since(0) if d.channel == "C0INCIDENTS"]
    votes = await store.ratings(decision.channel, decision.reply_ts)
    assert ("U0ALICE", "verdict", "+1", "confirm") in votes
    assert any(user == "U0ALICE" and kind == "severity" and value == "low" for user, kind, _, value in votes)
    assert local_bot.ml.models.version == seen["serving_after"]


def after_restart(driver: Any, url: str, refused: str, shots: Path) -> dict[str, Any]:
    """The page of a restarted bot, opened first at /models (a bookmark, a reload): the sidebar's channels,
    the refused version marked as such, then the channels as they were before the restart."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, TIMEOUT, ignored_exceptions=(StaleElementReferenceException,))
    step = iter(range(1, 100))

    def shot(name: str) -> None:
        driver.save_screenshot(str(shots / f"{next(step):02d}-{name}.png"))

    def until(condition: Callable[[Any], Any], what: str) -> Any:
        return wait.until(condition, message=f"the page never showed {what}")

    seen: dict[str, Any] = {}
    driver.get(url + "/models")
    until(lambda d: d.execute_script("return document.body.dataset.ready") == "true", "the workspace")
    card = f"section[data-version='{refused}']"
    marker = until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} [data-testid=gate-refused]"), "refused"
    )
    seen["channels"] = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#channels a")]
    seen["models_link_active"] = "active" in driver.find_element(By.ID, "models-link").get_attribute("class")
    seen["channel_view_hidden"] = not driver.find_element(By.ID, "channel-view").is_displayed()
    shot("models-opened-directly")
    seen["refused_marker"] = marker[0].text
    seen["refused_button"] = driver.find_element(By.CSS_SELECTOR, f"{card} [data-testid=promote]").text
    seen["refused_button_title"] = driver.find_element(
        By.CSS_SELECTOR, f"{card} [data-testid=promote]"
    ).get_attribute("title")
    # The serving version's category charts: the longest class names ("resource exhaustion") fit.
    chart = driver.find_element(By.CSS_SELECTOR, ".version.serving [data-testid=chart-category-per-class]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    seen["clipped_labels"] = driver.execute_script(CLIPPED, driver.find_element(By.ID, "models-view"))
    shot("category-charts")

    # From the sidebar to #incidents: the alert and the bot's thread from before the restart.
    driver.find_element(By.CSS_SELECTOR, "a[data-channel=C0INCIDENTS]").click()
    link = until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages [data-testid=thread-link]"), "the thread"
    )
    seen["alert"] = driver.find_element(By.CSS_SELECTOR, "#messages .message").text
    seen["reset_notice_shown"] = driver.find_element(By.ID, "history-reset").is_displayed()
    link[0].click()
    reply = until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .message.from-app .bk-actions"), "it")
    seen["decision"] = driver.find_element(By.CSS_SELECTOR, "#thread .message.from-app").text
    seen["reactions"] = [
        r.get_attribute("data-reaction")
        for r in driver.find_elements(By.CSS_SELECTOR, "#thread .message.from-app .reaction")
    ]
    assert reply
    shot("channel-after-restart")

    # Any channel's link, opened directly.
    driver.get(url + "/#alerts-prod")
    until(lambda d: d.find_element(By.ID, "channel-title").text == "# alerts-prod", "#alerts-prod")
    seen["deep_channel"] = driver.find_element(By.CSS_SELECTOR, "#channels a.active").text
    shot("channel-opened-directly")
    seen["console_errors"] = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return seen


def history_reset(driver: Any, url: str, shots: Path) -> dict[str, Any]:
    """The page of a bot whose channels' history is lost while its store kept the decisions."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    notice = WebDriverWait(driver, TIMEOUT).until(
        lambda d: (
            d.find_element(By.ID, "history-reset").is_displayed()
            and d.find_elements(By.CSS_SELECTOR, "#messages .empty")
        ),
        message="the page never said the history was reset",
    )
    assert notice
    driver.save_screenshot(str(shots / "05-history-reset-notice.png"))
    return {
        "reset_notice": driver.find_element(By.ID, "history-reset").text,
        "empty": driver.find_element(By.CSS_SELECTOR, "#messages .empty").text,
    }


@pytest.mark.asyncio
async def test_a_bookmarked_models_page_after_a_restart_with_a_refused_version(
    models_dir: Path, tmp_path: Path, browser: Any
) -> None:
    """`oncall serve` in local mode, stopped and started again (the same data directory and store): the
    channels show what they showed, /models opened directly lists them too, and a version the promotion
    gate refuses says so, with the gate's reasons, and offers only to promote it anyway."""
    shots = _artifacts("after-restart")
    settings = Settings(
        port=0,
        model_path=models_dir,
        db_url=f"sqlite:///{tmp_path / 'oncall.db'}",
        data_dir=tmp_path / "data",
    )
    first = OncallBot(settings, ml=MLService(models_dir, auto_train=False))
    await first.start()
    try:
        await first.wait_ready(timeout=30)
        emulator = first.emulator
        assert emulator is not None
        alert = await emulator.post_message(
            "U0BOB", "#incidents", "checkout 5xx at 40% for 10m since the deploy"
        )
        reply = await emulator.wait_for_bot_message("#incidents", thread_ts=alert["ts"], timeout=15)
        await emulator.add_reaction("U0ALICE", "C0INCIDENTS", reply["ts"], "+1")
        await emulator.settle()
    finally:
        await first.stop()
    assert (settings.data_dir / HISTORY_FILE).is_file()

    # A smaller model, trained meanwhile: the gate refuses it against the active version.
    with pytest.raises(GateRefused) as refusal:
        await asyncio.to_thread(train, REFUSED_CONFIG, models_dir)
    refused = refusal.value.version_id

    second = OncallBot(settings, ml=MLService(models_dir, auto_train=False))
    await second.start()
    try:
        await second.wait_ready(timeout=30)
        seen = await asyncio.to_thread(after_restart, browser, second.url, refused, shots)
    finally:
        await second.stop()

    # The history lost (deleted here): the channels start empty, and the page says so and what the store kept.
    (settings.data_dir / HISTORY_FILE).unlink()
    third = OncallBot(settings, ml=MLService(models_dir, auto_train=False))
    await third.start()
    try:
        await third.wait_ready(timeout=30)
        seen |= await asyncio.to_thread(history_reset, browser, third.url, shots)
    finally:
        await third.stop()

    assert seen["channels"] == ["# incidents", "# alerts-prod", "# general (no bot)"]
    assert seen["models_link_active"] and seen["channel_view_hidden"]
    assert "refused by the promotion gate" in seen["refused_marker"].lower()
    assert "trails the active" in seen["refused_marker"]  # the gate's own reasons
    assert "--force" in seen["refused_marker"]  # and what forcing means
    assert (
        seen["refused_button"] == "Promote anyway"
        and "forces it past the gate" in seen["refused_button_title"]
    )
    assert seen["clipped_labels"] == []
    assert "checkout 5xx at 40%" in seen["alert"] and not seen["reset_notice_shown"]
    assert "Severity:" in seen["decision"] and seen["reactions"] == ["+1"]
    assert seen["deep_channel"] == "# alerts-prod"
    assert seen["console_errors"] == []
    assert seen["reset_notice"].startswith("The channels' history was reset: no saved history was found")
    assert "The store kept 1 decision (counted on the models page)" in seen["reset_notice"] and seen["empty"]
    assert len(list(shots.glob("*.png"))) == 5
