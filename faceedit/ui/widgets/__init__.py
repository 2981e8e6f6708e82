"""The panels the main window is assembled from; each owns one job and talks through signals."""
