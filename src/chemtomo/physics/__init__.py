"""Physics shared by simulation and analysis: elements, HAADF scattering, X-ray lines, EELS edges, count statistics.

Both :mod:`chemtomo.simulate` (forward models) and the analysis packages
(:mod:`chemtomo.spectral`, :mod:`chemtomo.recon`, :mod:`chemtomo.quantify`,
:mod:`chemtomo.atomic`, ...) import from here; nothing here imports them.

* :mod:`~chemtomo.physics.elements`: atomic numbers and number densities;
* :mod:`~chemtomo.physics.scattering`: HAADF cross-sections per atom and per unit concentration;
* :mod:`~chemtomo.physics.xray`: X-ray line names and energies, production cross-sections, the EDX detector;
* :mod:`~chemtomo.physics.eels`: EELS edge names, onsets, shapes and cross-sections;
* :mod:`~chemtomo.physics.counts`: Poisson and Gaussian noise, binomial count splitting, random generators.
"""
