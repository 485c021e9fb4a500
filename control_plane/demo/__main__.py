"""``python -m control_plane.demo`` (``make demo``)."""

from control_plane.demo.run import main

main()
