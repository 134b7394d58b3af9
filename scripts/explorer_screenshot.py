"""Write docs/explorer.png: the explorer page of the embedded model's held-out document 0, pointing at the
third token of its answer, as headless Chromium shows it (needs chromium, chromium-driver and selenium):

    python scripts/explorer_screenshot.py
"""

import os
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from ledref import needle
from ledref.explorer import explore

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")
folder = tempfile.mkdtemp()
page = explore("ledref/tiny-needle", needle.make_document(0).text, os.path.join(folder, "page.html"), summarize=True)
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={os.path.join(folder, 'profile')}", "--window-size=1100,640", "--hide-scrollbars"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.get("file://" + os.path.abspath(page.path))
ActionChains(driver).move_to_element(driver.find_element(By.ID, "s3")).click().perform()  # pin " 27"
driver.execute_script("document.querySelector('#doc [data-w]') && [...document.querySelectorAll('#doc [data-w]')]"
                      ".sort((a, b) => b.dataset.w - a.dataset.w)[0].scrollIntoView({block: 'center'})")
driver.save_screenshot(os.path.join(DOCS, "explorer.png"))
driver.quit()
print(f"wrote docs/explorer.png ({page.n_tokens:,} tokens, answer {page.summary!r})")
