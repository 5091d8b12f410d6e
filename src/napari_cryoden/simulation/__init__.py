"""The cryo-EM micrograph simulator: optics, particles, micrographs and movies."""
