"""Physics-grade simulation: real atomic models, the field's libraries, a detector and a movie.

Two stages meet at :class:`~.contract.NoiseFreeImage`:

- the *specimen* stage (:mod:`.specimen`) turns atomic models into scattering potentials
  (``ttsim3d``), projects them at random orientations (``torch-fourier-slice``) into ice of
  varying thickness with carbon edges, and forms the image through the CTF (``torch-ctf``);
- the *exposure* stage (:mod:`.exposure`) records that image as a movie (Poisson counting,
  detector MTF and DQE, beam-induced drift), corrects the drift with sub-pixel interpolation,
  dose-weights, optionally Fourier-bins, and sums the frames, the even ones and the odd ones,
  passing the noise-free image through the same steps to give each sum its truth.

The cartoon simulator (:mod:`..micrographs`) stays for fast tests and the demo.
"""
