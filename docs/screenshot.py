"""Take the README's picture of the result page: the real server, the page in headless Chromium.

Usage (from the checkout, with the test extras and Debian's chromium and chromium-driver)::

    python docs/screenshot.py --model MODEL.npz -o docs/result-page.png SONG [SONG ...]

The server runs on a free port of 127.0.0.1; the songs are chosen in the
page's file field and submitted as a person would, and the whole result page
is saved as a PNG.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from webtools import Server, browser_missing, chromium, fresh_profile  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("songs", nargs="+", type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/result-page.png"))
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    reason = browser_missing()
    if reason:
        print(f"cannot take the screenshot: {reason}", file=sys.stderr)
        return 2
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp, Server(args.model, Path(tmp) / "server") as server:
        driver = chromium(fresh_profile())
        try:
            driver.set_window_size(args.width, 900)
            driver.get(server.url)
            driver.find_element(By.ID, "file").send_keys("\n".join(str(p.resolve()) for p in args.songs))
            driver.find_element(By.CSS_SELECTOR, "form#upload button").click()
            WebDriverWait(driver, 300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.result"))
            for _ in range(3):  # the window's frame takes some height: grow until nothing scrolls
                inner = driver.execute_script("return [document.documentElement.scrollHeight, window.innerHeight]")
                if inner[0] <= inner[1]:
                    break
                driver.set_window_size(args.width, driver.get_window_size()["height"] + inner[0] - inner[1])
            driver.save_screenshot(str(args.output))
        finally:
            driver.quit()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
