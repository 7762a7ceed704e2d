"""Networks only: FR models, quality students, eDifFIQA, DifFIQA (+ its UNet), GraFIQs, FaceQAN and the layers they
share. Each declares its input convention; none reads configuration or files beyond its weights."""
