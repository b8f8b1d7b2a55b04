#!/usr/bin/env python3
"""Build corpus/router-x200-user-manual.pdf from the text below (fpdf2, core fonts, no network).

Run from the repository root: `.venv/bin/python corpus/build_pdf.py`. The generated PDF is committed;
`--check` rebuilds it in memory and verifies with pypdf that every page's text extracts and that each
section sits on the page corpus/README.md claims (the factory reset procedure is on page 6).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

OUTPUT = Path(__file__).with_name("router-x200-user-manual.pdf")
TITLE = "Nimbus Networks Router X200 User Manual"
PUBLISHED = datetime(2026, 9, 15, tzinfo=UTC)
REVISION = "Document NN-X200-UM, revision 3.4 (September 2026), for firmware 3.4.2"


@dataclass(frozen=True)
class Page:
    """One printed page: a heading and blocks (a str is a paragraph, a list is a bulleted list)."""

    heading: str
    blocks: tuple[str | tuple[str, ...], ...]


PAGES: tuple[Page, ...] = (
    Page(
        "Welcome to your Router X200",
        (
            "Thank you for choosing the Nimbus Networks Router X200, a dual-band Wi-Fi 6 (AX3000) home and "
            "small-office router. This manual explains how to set up the router, connect devices to Wi-Fi, "
            "read the LED indicators, update the firmware and restore factory settings.",
            "Contents: page 1 Welcome and safety; page 2 In the box and hardware overview; page 3 LED "
            "indicators; page 4 Wi-Fi setup; page 5 Firmware updates; page 6 Factory reset and restarting; "
            "page 7 Specifications and support.",
            "Safety information:",
            (
                "Use only the 12 V / 2 A power adapter supplied in the box (model NPA-1220).",
                "Keep the router upright with at least 10 cm of free space around the ventilation slots.",
                "Operate between 0 and 40 degrees Celsius; keep away from water and direct sunlight.",
                "Do not open the enclosure: doing so voids the warranty and there are no user-serviceable "
                "parts inside.",
            ),
            REVISION + ". Nimbus Networks, Inc. All product names are fictional and used for demonstration.",
        ),
    ),
    Page(
        "In the box and hardware overview",
        (
            "In the box: Router X200, 12 V / 2 A power adapter (NPA-1220), 1.5 m Cat 6 Ethernet cable, "
            "quick start card and this manual.",
            "Rear panel, from left to right:",
            (
                "POWER socket (12 V DC) and the ON/OFF switch.",
                "WAN port: 2.5 Gbit/s Ethernet port (blue) for the modem or fibre terminal.",
                "LAN 1-4: four 1 Gbit/s Ethernet ports (yellow) for wired devices.",
                "USB 3.0 port for sharing a storage drive on the home network.",
                "RESET: a recessed button; press it with a straightened paper clip (see page 6).",
            ),
            "Front panel: the Power LED, the Internet LED, the Wi-Fi LED and the Status ring (see page 3).",
            "Bottom label: the default network name (SSID) in the form Nimbus-X200-XXXX, where XXXX are the "
            "last four characters of the MAC address, the default Wi-Fi password, the serial number (starting "
            "with NX2) and a QR code for setup with the Nimbus Home app.",
        ),
    ),
    Page(
        "LED indicators",
        (
            "Power LED:",
            (
                "Solid white: the router is on and working normally.",
                "Blinking white: the router is starting up (about 90 seconds).",
                "Solid amber: a firmware update is being installed. Do not unplug the router.",
                "Blinking amber: hardware fault. Restart the router; if the LED keeps blinking amber, "
                "contact Nimbus support.",
            ),
            "Internet LED:",
            (
                "Solid white: connected to the internet.",
                "Solid red: the WAN cable is connected but there is no internet connection. Restart your "
                "modem, then the router.",
                "Off: no cable in the WAN port.",
            ),
            "Wi-Fi LED: solid white when the 2.4 GHz and 5 GHz radios are on; off when Wi-Fi is switched off "
            "in the settings or by the Wi-Fi schedule.",
            "Status ring:",
            (
                "Pulsing blue: ready for setup (factory settings).",
                "Solid blue: setup complete, normal operation (dims after 5 minutes).",
                "Blinking red: a factory reset is in progress.",
                "Solid purple: Recovery Mode (see page 6).",
            ),
        ),
    ),
    Page(
        "Wi-Fi setup",
        (
            "Option A - Nimbus Home app (recommended): install the Nimbus Home app (iOS 16 or later, "
            "Android 11 or later), tap Add device, then scan the QR code on the bottom label. The app names "
            "your network, sets the Wi-Fi password and the admin password, and checks for new firmware.",
            "Option B - web browser: connect a computer to a LAN port or to the default network printed on "
            "the label, open http://192.168.50.1 (or http://router.nimbus) and follow the setup wizard. On "
            "first login you must create an admin password of at least 12 characters.",
            "Wi-Fi settings (Settings > Wi-Fi):",
            (
                "Band steering is on by default: one network name for both bands; the router moves devices "
                "to the best band.",
                "Security: WPA3-Personal by default; WPA2/WPA3 transition mode is available for older devices.",
                "Guest network: isolated from your main network, up to 16 devices, optional time limit.",
                "The router supports up to 128 connected devices in total.",
                "Wi-Fi schedule: switch Wi-Fi off at set times, for example overnight.",
            ),
            "Tip: place the router in a central, raised, open location. Walls, mirrors and microwave ovens "
            "reduce Wi-Fi range. For larger homes add Nimbus Mesh M3 nodes.",
        ),
    ),
    Page(
        "Firmware updates",
        (
            "Keep the firmware up to date: updates fix security issues and add features. The current "
            "firmware version is 3.4.2 (released 15 September 2026). Firmware 3.4.2 fixes security advisory "
            "NNSA-2026-007; every X200 running firmware 3.0.0 to 3.4.1 should be updated.",
            "Automatic updates are on by default: the router checks every night between 02:00 and 04:00 "
            "local time and installs new firmware when no device has been active for 10 minutes.",
            "To update manually in the Nimbus Home app: Router > Settings > Firmware > Check now.",
            "To update manually in the web interface:",
            (
                "Download the .bin file for the Router X200 from support.nimbusnetworks.example/x200.",
                "Open http://192.168.50.1 and go to Settings > System > Firmware.",
                "Click Upload firmware, select the file and click Install.",
                "The update takes about 5 minutes. The Power LED stays solid amber; do not unplug the router "
                "or switch it off until the Power LED returns to solid white.",
            ),
            "Firmware cannot be downgraded below version 3.0.0. Custom or third-party firmware is not "
            "supported and voids the warranty.",
        ),
    ),
    Page(
        "Factory reset and restarting",
        (
            "Restart (keeps your settings): switch the router off with the ON/OFF switch, wait 10 seconds and "
            "switch it on again. Pressing the RESET button for less than 10 seconds also only restarts it.",
            "Factory reset procedure (erases all settings):",
            (
                "1. Make sure the router is switched on and the Power LED is solid white.",
                "2. Using a straightened paper clip, press and hold the recessed RESET button on the rear "
                "panel for 10 seconds, until the Status ring blinks red.",
                "3. Release the button. The router restarts; this takes about 3 minutes.",
                "4. When the Status ring pulses blue, the router is back at factory settings.",
                "5. Set it up again as described on page 4.",
            ),
            "What a factory reset changes: the Wi-Fi name and password return to the values on the bottom "
            "label, the admin password is cleared, and all custom settings (port forwarding, guest network, "
            "parental controls) are erased. The firmware version is not changed.",
            "Recovery Mode: if the router does not start after a failed update, hold RESET for more than 30 "
            "seconds while switching the router on. The Status ring turns solid purple; connect a computer to "
            "LAN 1, open http://192.168.50.1/recovery and upload the firmware file.",
        ),
    ),
    Page(
        "Specifications and support",
        (
            "Specifications:",
            (
                "Wi-Fi: Wi-Fi 6 (802.11ax) AX3000, 2.4 GHz up to 574 Mbit/s, 5 GHz up to 2402 Mbit/s.",
                "Ports: 1 x 2.5 Gbit/s WAN, 4 x 1 Gbit/s LAN, 1 x USB 3.0.",
                "Security: WPA3-Personal, WPA2/WPA3 transition, SPI firewall, automatic firmware updates.",
                "Dimensions: 220 x 160 x 45 mm. Weight: 540 g.",
                "Power: 12 V DC, 2 A; typical consumption 9 W.",
                "Operating temperature: 0 to 40 degrees Celsius.",
            ),
            "Warranty: the Router X200 comes with a 2-year limited hardware warranty; Nimbus Care+ "
            "subscribers get 4 years. See the Nimbus warranty and returns policy for the full terms.",
            "Support: support.nimbusnetworks.example, or call 1-800-555-0142, Monday to Friday, 8:00 to "
            "20:00 Eastern Time. Have your serial number (bottom label, starting with NX2) ready.",
        ),
    ),
)

# The page (1-based) on which each key fact must appear; corpus/README.md states the same pages.
EXPECTED_PAGES: dict[str, int] = {
    "Factory reset procedure": 6,
    "press and hold the recessed RESET button": 6,
    "Blinking red: a factory reset is in progress": 3,
    "open http://192.168.50.1 (or http://router.nimbus)": 4,
    "The current firmware version is 3.4.2": 5,
    "Solid amber: a firmware update is being installed": 3,
    "Dimensions: 220 x 160 x 45 mm": 7,
}


class _Manual(FPDF):
    def header(self) -> None:
        self.set_font("Helvetica", "B", 9)
        self.set_text_color(90, 90, 90)
        self.cell(0, 8, TITLE, new_x="LMARGIN", new_y="NEXT", align="L")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "", 9)
        self.set_text_color(90, 90, 90)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")


def render() -> bytes:
    """Lay out every page of the manual and return the PDF bytes."""
    pdf = _Manual(format="A4")
    pdf.set_title(TITLE)
    pdf.set_author("Nimbus Networks, Inc.")
    pdf.set_subject("Router X200 setup, LEDs, firmware updates and factory reset")
    pdf.set_creation_date(PUBLISHED)  # fixed date: the same text always yields the same bytes
    pdf.set_auto_page_break(auto=False)
    for page in PAGES:
        pdf.add_page()
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 9, page.heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        for block in page.blocks:
            pdf.set_font("Helvetica", "", 11)
            if isinstance(block, str):
                pdf.multi_cell(0, 6, block, new_x="LMARGIN", new_y="NEXT")
            else:
                for item in block:
                    bullet = "" if item[:2].rstrip(".").isdigit() else "-  "
                    pdf.set_x(pdf.l_margin + 6)
                    pdf.multi_cell(0, 6, bullet + item, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        if pdf.get_y() > pdf.h - 20:
            raise RuntimeError(f"page {pdf.page_no()} ({page.heading!r}) overflows into the footer")
    return bytes(pdf.output())


def check(data: bytes) -> list[str]:
    """Return problems found by extracting the PDF's text with pypdf (empty when all is well)."""
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    texts = [" ".join((page.extract_text() or "").split()) for page in reader.pages]
    problems = []
    if len(texts) != len(PAGES):
        problems.append(f"expected {len(PAGES)} pages, found {len(texts)}")
    for number, text in enumerate(texts, start=1):
        if len(text) < 200:
            problems.append(f"page {number} extracts only {len(text)} characters")
    for phrase, expected in EXPECTED_PAGES.items():
        found = [number for number, text in enumerate(texts, start=1) if phrase in text]
        if found != [expected]:
            problems.append(f"{phrase!r} expected on page {expected}, found on {found or 'no page'}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="verify the committed PDF instead of writing it")
    args = parser.parse_args()
    data = render()
    if args.check:
        if OUTPUT.read_bytes() != data:
            print(f"{OUTPUT.name} is out of date: run corpus/build_pdf.py", file=sys.stderr)
            return 1
    else:
        OUTPUT.write_bytes(data)
    problems = check(data)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{OUTPUT.name}: {len(PAGES)} pages, text extracts, key facts on the expected pages")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
