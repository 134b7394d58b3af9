"""The attention explorer: the page's numbers against the compact layout decoded by ledref.layout, in a real
headless Chromium (a mouse pointed at tokens, the shading read back from the DOM); its size at 16,384 tokens;
`ledref explore` and the progress bars of `explore` and `plot`."""

import html
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import ledref
from conftest import CI, random_led, require
from ledref import explorer, layout, needle, viz

TOKENIZER = Path(__file__).parent / "data" / "tokenizer"
TEXT = (TOKENIZER / "corpus.txt").read_text(encoding="utf-8")[:1200] + " naïve café 👨‍👩‍👧 <mask> end."
WINDOW, HEADS = 16, 2




# ------------------------------------------------------------------------------------------------ the data

def test_top_weights_keeps_the_largest_of_each_row():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(40) * 0.3, size=50)
    weights[3] = 0  # a row of zeros (a pad or filler row) keeps zeros
    keys = np.broadcast_to(np.arange(100, 140), weights.shape)
    kept_keys, codes, top, share = explorer.top_weights(weights, keys, 7)
    for r in range(50):
        order = np.sort(weights[r])[::-1]
        assert np.allclose(np.sort(weights[r, kept_keys[r] - 100])[::-1], order[:7])  # the 7 largest
        expected = np.rint(weights[r, kept_keys[r] - 100] / max(order[0], 1e-300) * 255)
        np.testing.assert_array_equal(codes[r], expected)
        assert top[r] == np.float32(order[0])
        assert share[r] == pytest.approx(order[:7].sum() / order.sum() if order[0] else 1.0)
    whole = explorer.top_weights(weights, keys, 99)  # more than a row holds: every weight
    assert whole[1].shape == (50, 40) and np.all(whole[3] == 1)


def synthetic_layer(length, heads, window, global_positions, seed=0):
    """Arrays of one layer's compact layout and its global rows, shaped as the model returns them, holding
    random (unnormalised) weights: a page's size depends on the shapes and the spread of the weights."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((1, length), dtype=np.int64)
    mask[0, list(global_positions)] = 1
    local = rng.gamma(0.3, size=(1, heads, length, len(global_positions) + window + 1)).astype(np.float32)
    glob = rng.gamma(0.3, size=(1, heads, length, len(global_positions))).astype(np.float32)
    return local, glob, mask


@pytest.mark.parametrize("length, heads, window, max_bytes", [(16384, 12, 64, explorer.MAX_BYTES),
                                                               (16384, 16, 32, explorer.MAX_BYTES),
                                                               (3000, 12, 256, 3_000_000)])
def test_page_stays_under_its_size_limit(length, heads, window, max_bytes):
    """16,384 tokens with every head of a layer (led-base's 12, led-large's 16) and a summary: at most 25 MB;
    the weights kept are what the byte budget allows, stated on the page."""
    local, glob, mask = synthetic_layer(length, heads, window, (0, 7))
    text = " ".join(["word"] * (length - 2))
    offsets = [(0, 0)] + [(5 * i, 5 * i + 4) for i in range(length - 2)] + [(0, 0)]
    tokens = ["<s>"] + ["word"] * (length - 2) + ["</s>"]
    cross = np.random.default_rng(1).dirichlet(np.ones(length) * 0.1, size=(40, heads))
    page, stats = explorer.build_page(text, offsets, tokens, local, glob, mask, summary_tokens=["x"] * 40,
                                      cross_attentions=cross, max_bytes=max_bytes)
    assert stats["bytes"] == len(page.encode("utf-8")) <= max_bytes
    k, of = stats["kept"]["local"]
    assert 1 <= k < of == 2 + window + 1
    assert f"the {k:,} largest of {of:,} weights" in html.unescape(page)
    assert max_bytes - stats["bytes"] < 0.1 * max_bytes  # the budget is used, not wasted


# ------------------------------------------------------------------------------------------------ in Chromium

@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Selenium (Debian's chromium and chromium-driver, never a download)."""
    chromium = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                     if p and os.path.exists(p)), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and os.path.exists(p)),
                  None)
    if chromium is None or driver is None:
        message = "no Chromium (apt-get install chromium chromium-driver)"
        pytest.fail(f"CI=true but {message}") if CI else pytest.skip(message)
    webdriver = require("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="ledref-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1200,900"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Page:
    """An explorer page open in the browser: point at tokens, choose heads, read the shading."""

    def __init__(self, driver, path):
        self.driver = driver
        driver.get(Path(path).resolve().as_uri())
        assert driver.execute_script("return document.body.dataset.ready") == "1", "the page's script did not run"

    def point(self, element_id):
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        element = self.driver.find_element(By.ID, element_id)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        ActionChains(self.driver).move_to_element(element).perform()  # a real pointer move: mouseover fires
        return element

    def click(self, element_id):
        self.point(element_id).click()

    def head(self, value):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select
        Select(self.driver.find_element(By.ID, "head")).select_by_value(str(value))

    def shading(self):
        """{token: weight} of the shaded document tokens (their data-w), and the tokens framed as the window."""
        weights, window = self.driver.execute_script(
            "return [[...document.querySelectorAll('#doc [data-w]')].map(e => [e.id, e.dataset.w]),"
            " [...document.querySelectorAll('#doc .win')].map(e => e.id)]")
        return {int(i[1:]): float(w) for i, w in weights}, {int(i[1:]) for i in window}

    def status(self):
        return self.driver.execute_script("return document.getElementById('status').textContent")


def assert_shows(shown, row, kept=None):
    """The page shows row (exact attention weights over the document's tokens) as 8-bit fractions of its
    largest weight: every weight that does not round to 0, within 1/510 of the largest (all of them, or the
    `kept` largest)."""
    top = float(row.max())
    visible = {int(j) for j in np.flatnonzero(np.rint(row / top * 255) > 0)}
    if kept is None:
        assert set(shown) == visible, (sorted(set(shown) ^ visible))[:10]
    else:
        assert set(shown) <= visible and len(shown) <= kept
        left_out = np.delete(row, sorted(shown))
        assert min(row[sorted(shown)]) >= left_out.max() - 1e-6 * top  # the largest weights are the ones kept
    for j, w in shown.items():
        assert abs(w - row[j]) <= top / 510 + 1e-6 * top, (j, w, row[j])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A random LED over the test tokenizer's vocabulary, its tokenizer, and the text's ids."""
    path = tmp_path_factory.mktemp("explorer")
    model = random_led(path, dtype="float32", vocab_size=3000, max_encoder_position_embeddings=512,
                       attention_window=WINDOW, encoder_attention_heads=HEADS, decoder_attention_heads=HEADS,
                       max_decoder_position_embeddings=16)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(TOKENIZER / name, path / name)
    tokenizer = ledref.LEDTokenizer.from_pretrained(path)
    return model, tokenizer, path


@pytest.mark.browser
def test_pointing_at_tokens_shades_their_attention(small, browser, tmp_path):
    """Every weight the page shows is the layout's (ledref.layout.to_dense of the encoder's compact outputs),
    for a local token's window (mean of heads), a global token's row (one head), a summary token's
    cross-attention; the window is framed; a pinned row reads out the weight of the token pointed at."""
    model, tokenizer, _ = small
    globals_ = (0, 40)
    result = explorer.explore(model, TEXT, tmp_path / "page.html", tokenizer=tokenizer, global_positions=globals_,
                              layer=1, summarize=True, max_new_tokens=6, min_new_tokens=6)
    assert result.kept["local"][0] == result.kept["local"][1] == len(globals_) + WINDOW + 1  # small: all kept
    ids = np.array([tokenizer(TEXT)["input_ids"]])
    mask = np.zeros_like(ids)
    mask[0, list(globals_)] = 1
    encoded = model.encoder(ids, global_attention_mask=mask, output_attentions=True)
    dense = layout.to_dense(encoded.attentions[1], encoded.global_attentions[1], mask)[0].astype(np.float64)
    generated = model.generate(ids, global_attention_mask=mask, max_new_tokens=6, min_new_tokens=6,
                               return_dict_in_generate=True, output_attentions=True)

    page = Page(browser, result.path)
    for token in (100, 3, ids.shape[1] - 2):  # the middle, near the start, the last real token
        page.point(f"t{token}")
        shown, window = page.shading()
        assert_shows(shown, dense[:, token].mean(axis=0))
        assert window == set(range(max(0, token - WINDOW // 2), min(ids.shape[1], token + WINDOW // 2 + 1)))
        assert f"(#{token})" in page.status()
    page.head(1)
    page.point("t40")
    shown, window = page.shading()
    assert_shows(shown, dense[1, 40])
    assert not window and "a global token" in page.status()
    assert len(shown) > ids.shape[1] // 2  # a global token attends to every token
    page.head(HEADS)  # the mean of the heads
    cross = viz.cross_attention_map(generated)  # [steps, tokens]
    for step in (0, 4):
        page.point(f"s{step}")
        assert_shows(page.shading()[0], cross[step].astype(np.float64))
    page.click("t100")  # pinned: pointing elsewhere reads the pinned row
    page.point("t101")
    row = dense[:, 100].mean(axis=0)
    value = float(re.search(r"= ([0-9.]+)", page.status()).group(1))
    assert abs(value - row[101]) <= row.max() / 510 + 1e-6
    assert page.shading()[0].keys() == assert_keys(row)
    # self-contained: nothing was fetched, nothing refers to the network
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    source = Path(result.path).read_text(encoding="utf-8")
    assert not re.search(r"https?://|<link|<script[^>]*src=|<img|@import|url\(", source)


def assert_keys(row):
    top = row.max()
    return {int(j) for j in np.flatnonzero(np.rint(row / top * 255) > 0)}


@pytest.mark.browser
def test_a_page_over_its_budget_keeps_each_rows_largest_weights(small, browser, tmp_path):
    """With a small max_bytes, each row keeps its K largest weights: the page shows those (and no others), and
    says how many it keeps."""
    model, tokenizer, _ = small
    result = explorer.explore(model, TEXT, tmp_path / "small.html", tokenizer=tokenizer, layer=0,
                              max_bytes=42_000)
    k, of = result.kept["local"]
    assert 1 <= k < of and result.bytes <= 42_000
    ids = np.array([tokenizer(TEXT)["input_ids"]])
    mask = np.zeros_like(ids)
    mask[0, 0] = 1
    encoded = model.encoder(ids, global_attention_mask=mask, output_attentions=True)
    dense = layout.to_dense(encoded.attentions[0], encoded.global_attentions[0], mask)[0].astype(np.float64)
    page = Page(browser, result.path)
    for token in (60, 200):
        page.point(f"t{token}")
        assert_shows(page.shading()[0], dense[:, token].mean(axis=0), kept=k)
    footer = browser.execute_script("return document.getElementById('fidelity').textContent")
    assert f"the {k} largest of {of} weights" in footer


@pytest.mark.browser
def test_the_demo_document(browser, tmp_path):
    """The embedded model on its held-out document: pointing at each digit of the answer shows the decoder's
    cross-attention peaking in the sentence that states the code it copies ("the third green code is 45")."""
    doc = needle.make_document(0)
    result = explorer.explore("ledref/tiny-needle", doc.text, tmp_path / "demo.html", summarize=True)
    assert result.summary.strip() == doc.answer
    page = Page(browser, result.path)
    tokenizer = ledref.LEDTokenizer.from_pretrained("ledref/tiny-needle")
    spans = tokenizer(doc.text, return_offsets_mapping=True)["offset_mapping"]
    codes = {doc.text[start:end]: [i for i, (a, b) in enumerate(spans) if a < end and b > start]
             for start, end in doc.facts}
    written = json.loads(browser.execute_script(
        "return JSON.stringify([...document.querySelectorAll('#summary span')].map(e => e.textContent))"))
    digits = [(step, piece.strip()) for step, piece in enumerate(written) if piece.strip().isdigit()]
    assert len(digits) == len(doc.facts) - 1  # the colour, then one code per fact
    for step, code in digits:
        page.point(f"s{step}")
        shown = page.shading()[0]
        best = max(shown, key=shown.get)
        assert min(abs(best - i) for i in codes[code]) <= 6, (code, best, doc.text[slice(*spans[best])])


# ------------------------------------------------------------------------------------------------ the command

def ledref_command(*args):
    from support import ledref_command as run
    return run(*args)


def test_explore_command(small, tmp_path):
    _, _, path = small
    (tmp_path / "doc.txt").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "page.html"
    run = ledref_command("explore", "--model", path, "--layer", "0", "--global", "0,5", "--summarize",
                         "--max-new-tokens", "4", "--out", out, tmp_path / "doc.txt")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"wrote {out} (") and "encoder layer 0, 2 heads" in lines[1]
    source = out.read_text(encoding="utf-8")
    assert source.count('class="g"') == 2 * 2  # two global tokens, in the text and in the header
    assert source.count('<span id="s') == 4  # the summary's tokens
    assert run.stderr == ""  # no progress bars when stderr is not a terminal


def test_explore_command_errors(small, tmp_path):
    from support import one_error_line
    _, _, path = small
    doc = tmp_path / "doc.txt"
    doc.write_text(TEXT, encoding="utf-8")
    page = tmp_path / "page.html"
    one_error_line(ledref_command("explore", "--model", path, "--layer", "2", "--out", page, doc), 2,
                   r"--layer 2 is out of range; the encoder has layers 0..1")
    one_error_line(ledref_command("explore", "--model", path, "--out", tmp_path / "page.png", doc), 2,
                   r"expected an \.html file name")
    one_error_line(ledref_command("explore", "--model", path, "--max-mb", "0", "--out", page, doc), 2,
                   r"--max-mb 0.0: expected a size > 0")
    one_error_line(ledref_command("explore", "--model", path, "--global", "9999", "--out", page, doc), 1,
                   r"--global position 9999 is past the end of the input")
    one_error_line(ledref_command("explore", "--model", path, "--max-mb", "0.001", "--out", page, doc), 1,
                   r"max_bytes=1,000 leaves no room")
    assert not page.exists()


def test_progress_bars_of_explore_and_plot_only_on_a_terminal(small, tmp_path):
    from support import terminal_stderr
    _, _, path = small
    doc = tmp_path / "doc.txt"
    doc.write_text(TEXT, encoding="utf-8")
    shown = terminal_stderr("explore", "--model", path, "--summarize", "--max-new-tokens", "3", "--out",
                            tmp_path / "p.html", doc)
    assert "encoder:" in shown and "/2 [" in shown and "decoding:" in shown and "page:" in shown
    assert terminal_stderr("explore", "--model", path, "--quiet", "--out", tmp_path / "p.html", doc) == ""
    shown = terminal_stderr("plot", "--model", path, "--out", tmp_path / "p.png", doc)
    assert "encoder:" in shown and "/2 [" in shown
    assert terminal_stderr("plot", "--model", path, "--quiet", "--out", tmp_path / "p.png", doc) == ""
