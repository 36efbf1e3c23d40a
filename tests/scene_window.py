"""Shows a picture in a real X window titled "VRChat" at the top-left corner, and shows the new picture
whenever the file changes (the vision tests swap scenes by replacing it).

Run: ``python tests/scene_window.py PICTURE.png`` with DISPLAY set (the tests start Xvfb for it)."""

from __future__ import annotations

import sys
import tkinter
from pathlib import Path

from PIL import Image, ImageTk

POLL_MS = 50


def main(picture: Path) -> None:
    root = tkinter.Tk()
    root.title("VRChat")
    root.geometry("+0+0")
    label = tkinter.Label(root, borderwidth=0, highlightthickness=0)
    label.pack()
    shown: list[object] = [None, None]  # the file's mtime, the PhotoImage (kept alive)

    def refresh() -> None:
        try:
            stamp = picture.stat().st_mtime_ns
            if stamp != shown[0]:
                with Image.open(picture) as image:
                    photo = ImageTk.PhotoImage(image.convert("RGB"))
                label.configure(image=photo)
                shown[:] = [stamp, photo]
                print("shown", stamp, flush=True)
        except (OSError, SyntaxError):
            pass  # being replaced: the next poll shows it
        root.after(POLL_MS, refresh)

    refresh()
    root.mainloop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
