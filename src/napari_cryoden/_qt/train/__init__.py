"""The Train widget, its forms, worker, subprocess launcher and loss plot."""
