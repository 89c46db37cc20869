"""The demo page in headless Chromium: upload and enroll, verify the same
person and another, identify, delete; faces to name (keep, cluster, name,
drop, merge); check what the page shows (decision,
similarity, drawn faces), that it loads nothing from elsewhere and logs no
errors, and keep screenshots.

    python ui_test.py BASE_URL PHOTOS_DIR ARTIFACTS_DIR
"""
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

base, photos, artifacts = sys.argv[1], sys.argv[2], sys.argv[3]

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]:
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 60)


def result(element_id, contains):
    """Waits until a result line contains `contains`; returns its text."""
    wait.until(EC.text_to_be_present_in_element((By.ID, element_id), contains))
    return driver.find_element(By.ID, element_id).text


def faces_drawn(canvas_id):
    return int(driver.find_element(By.ID, canvas_id).get_attribute("data-faces") or -1)


try:
    driver.get(base + "/")
    assert driver.title.startswith("visage"), driver.title
    result("persons-result", "Nobody is enrolled yet")

    # Enroll from an uploaded photo.
    driver.find_element(By.ID, "enroll-name").send_keys("Barack Obama")
    driver.find_element(By.ID, "enroll-photo").send_keys(f"{photos}/obama.jpg")
    driver.find_element(By.CSS_SELECTOR, "#enroll-form button[type=submit]").click()
    text = result("enroll-result", "Enrolled Barack Obama")
    assert faces_drawn("enroll-canvas") == 1, "the enrolled face is drawn"
    wait.until(lambda d: "Barack Obama" in d.find_element(By.ID, "persons").text)
    driver.save_screenshot(f"{artifacts}/ui-enrolled.png")

    # Verify another photo of him: a match, with the similarity shown.
    driver.find_element(By.ID, "match-photo").send_keys(f"{photos}/obama2.jpg")
    assert Select(driver.find_element(By.ID, "match-person")).first_selected_option.text == "Barack Obama"
    driver.find_element(By.ID, "verify-button").click()
    text = result("match-result", "Match: Barack Obama")
    similarity = float(text.split("similarity ")[1].split(" ")[0])
    assert 0.5 < similarity <= 1.0, text
    assert faces_drawn("match-canvas") == 1
    driver.save_screenshot(f"{artifacts}/ui-verify-match.png")
    print(f"verify obama2: {text}")

    # Someone else: no match.
    driver.find_element(By.ID, "match-photo").send_keys(f"{photos}/biden.jpg")
    driver.find_element(By.ID, "verify-button").click()
    text = result("match-result", "No match")
    driver.save_screenshot(f"{artifacts}/ui-verify-no-match.png")
    print(f"verify biden: {text}")

    # Identify: named, with the face labelled on the canvas.
    driver.find_element(By.ID, "match-photo").send_keys(f"{photos}/obama3.jpg")
    driver.find_element(By.ID, "identify-button").click()
    text = result("match-result", "identified Barack Obama")
    assert "Barack Obama" in driver.find_element(By.ID, "match-canvas").get_attribute("aria-label")
    driver.save_screenshot(f"{artifacts}/ui-identify.png")
    print(f"identify obama3: {text}")

    # A bad upload gets the service's error code on the page.
    driver.find_element(By.ID, "match-photo").send_keys(os.path.realpath(f"{photos}/../../Cargo.toml"))
    driver.find_element(By.ID, "identify-button").click()
    result("match-result", "invalid_image")

    # The webcam (Chromium's fake camera) fills the photo; enrolling it finds no face.
    driver.find_element(By.CSS_SELECTOR, "button.camera[data-target=enroll]").click()
    wait.until(lambda d: d.execute_script("return document.getElementById('camera-video').videoWidth > 0"))
    driver.find_element(By.ID, "camera-take").click()
    wait.until(lambda d: not d.execute_script("return document.getElementById('camera-dialog').open"))
    driver.find_element(By.ID, "enroll-name").clear()
    driver.find_element(By.ID, "enroll-name").send_keys("Test Pattern")
    driver.find_element(By.CSS_SELECTOR, "#enroll-form button[type=submit]").click()
    result("enroll-result", "no_face")

    # Delete from the list.
    driver.find_element(By.CSS_SELECTOR, "#persons button[aria-label='Delete Barack Obama']").click()
    driver.switch_to.alert.accept()
    result("persons-result", "Deleted Barack Obama")
    wait.until(lambda d: "Barack Obama" not in d.find_element(By.ID, "persons").text)
    driver.save_screenshot(f"{artifacts}/ui-deleted.png")

    # Faces to name: keep the faces of four photos, see Obama's three grouped
    # (with their crops), name the group, drop the stranger's face, merge two persons.
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]:
        driver.find_element(By.ID, "keep-photo").send_keys(f"{photos}/{name}")
        driver.find_element(By.CSS_SELECTOR, "#keep-form button[type=submit]").click()
        result("faces-result", f"Kept the faces of {name}")
    wait.until(lambda d: "Cluster 1: 3 faces" in d.find_element(By.ID, "clusters").text)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#clusters > li")) == 2
    wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#clusters img')].filter(i => i.complete && i.naturalWidth > 0).length") == 4)
    driver.save_screenshot(f"{artifacts}/ui-faces-to-name.png")
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Name cluster 1']").send_keys("Barack Obama")
    driver.find_element(By.CSS_SELECTOR, "#clusters > li:first-child button[type=submit]").click()
    result("faces-result", "Named 3 faces Barack Obama")
    wait.until(lambda d: "Barack Obama 3 faces" in d.find_element(By.ID, "persons").text)
    driver.find_element(By.CSS_SELECTOR, "#clusters button[aria-label^='Drop']").click()
    result("faces-result", "Dropped")
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#clusters > li"))
    driver.find_element(By.ID, "enroll-name").clear()
    driver.find_element(By.ID, "enroll-name").send_keys("Obama again")
    driver.find_element(By.ID, "enroll-photo").send_keys(f"{photos}/obama2.jpg")
    driver.find_element(By.CSS_SELECTOR, "#enroll-form button[type=submit]").click()
    result("enroll-result", "Enrolled Obama again")
    wait.until(lambda d: len(Select(d.find_element(By.ID, "merge-from")).options) == 2)
    Select(driver.find_element(By.ID, "merge-from")).select_by_visible_text("Obama again")
    Select(driver.find_element(By.ID, "merge-into")).select_by_visible_text("Barack Obama")
    driver.find_element(By.CSS_SELECTOR, "#merge-form button[type=submit]").click()
    result("faces-result", "Merged Obama again into Barack Obama")
    wait.until(lambda d: "Barack Obama 4 faces" in d.find_element(By.ID, "persons").text)
    assert "Obama again" not in driver.find_element(By.ID, "persons").text
    driver.save_screenshot(f"{artifacts}/ui-faces-named.png")
    print("ui: faces to name: keep, cluster with crops, name, drop, merge: ok")

    # Nothing from elsewhere, no errors in the console (CSP violations included).
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    foreign = [r for r in resources if not (r.startswith(base) or r.startswith("blob:") or r.startswith("data:"))]
    assert not foreign, foreign
    time.sleep(0.2)
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "the server responded with a status of" not in e["message"]]
    assert not errors, errors
    print("ui: enroll, verify (match and not), identify, error, webcam, delete: ok")

    # The API docs render from the vendored Swagger UI, under the same policy.
    driver.get(base + "/docs")
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".swagger-ui .info .title"), "visage"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 20)
    operations = len(driver.find_elements(By.CSS_SELECTOR, ".opblock"))
    driver.save_screenshot(f"{artifacts}/docs.png")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    print(f"docs: Swagger UI shows {operations} operations: ok")
finally:
    driver.quit()
