"""Neural networks shared by the analysis packages: the 2D U-Net and its weights files (:mod:`.unet`) and the
training loop (:mod:`.fit`). Imports only core and io; the shipped weights stay with the packages that use them."""
