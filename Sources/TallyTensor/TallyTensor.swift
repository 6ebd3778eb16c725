/// TallyTensor: Float32 CPU tensors and reverse-mode autograd on OpenBLAS.
public enum TallyTensor {}
