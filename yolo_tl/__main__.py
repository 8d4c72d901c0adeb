"""``python -m yolo_tl`` runs the command line."""

from yolo_tl.cli import main

if __name__ == "__main__":
    main()
