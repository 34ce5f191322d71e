"""delrec-edge training side: float Conv+DelRec spiking networks, datasets and the audio front end."""

__version__ = "0.1.0"
