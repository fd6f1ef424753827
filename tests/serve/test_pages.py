"""The pages of `mentor serve` in a real browser (headless Chromium through Selenium)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mentor.serve.app import create_app
from tests.serve import models
from tests.serve.live import live_server

WAIT_S = 20


def _wait(browser, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def _shot(browser, screenshots: Path | None, name: str) -> None:
    if screenshots is not None:
        assert browser.save_screenshot(str(screenshots / f"{name}.png"))


def test_the_image_page_shows_the_label_and_probability_bars(
    browser, screenshots, mnist_tiny: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    app = create_app(models.digits_model(mnist_tiny, tmp_path))
    image = sorted((mnist_tiny / "valid" / "7").glob("*.png"))[3]
    with live_server(app) as url:
        browser.get(url)
        _wait(browser, "#image-panel")
        assert "classification" in browser.find_element(By.ID, "subtitle").text
        browser.find_element(By.ID, "file-input").send_keys(str(image))
        label = _wait(browser, "#predicted-label")
        assert label.text == "7"
        bars = browser.find_elements(By.CSS_SELECTOR, "#image-result .bar")
        assert [b.get_attribute("data-class") for b in bars][0] == "7" and len(bars) == 2
        width = bars[0].find_element(By.CSS_SELECTOR, ".fill").get_attribute("style")
        assert "width" in width and float(width.split(":")[1].strip(" %;")) > 50
        drawn = browser.execute_script("return document.getElementById('picture').width")
        assert drawn > 0  # the picture is shown beside the labels
        _shot(browser, screenshots, "serve_image")
        assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None


def test_the_tabular_form_starts_from_the_training_data_and_predicts(
    browser, screenshots, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    app = create_app(models.tabular_model(tmp_path))
    columns = {c["name"]: c for c in app.state.model.info["schema"]["columns"]}
    with live_server(app) as url:
        browser.get(url)
        _wait(browser, "#tabular-panel")
        colour = Select(browser.find_element(By.ID, "col-color"))
        assert colour.first_selected_option.text == columns["color"]["default"]
        z = browser.find_element(By.ID, "col-z")
        assert float(z.get_attribute("value")) == pytest.approx(columns["z"]["default"])
        colour.select_by_visible_text("blue")
        z.clear()
        z.send_keys("7.5")
        browser.find_element(By.ID, "tabular-btn").click()
        label = _wait(browser, "#predicted-label")
        expected, _ = app.state.model.predictor.predict(
            {
                "color": "blue",
                "size": columns["size"]["default"],
                "x": columns["x"]["default"],
                "z": 7.5,
            }
        )
        assert label.text == expected
        assert len(browser.find_elements(By.CSS_SELECTOR, "#tabular-result .bar")) == 2
        _shot(browser, screenshots, "serve_tabular")
