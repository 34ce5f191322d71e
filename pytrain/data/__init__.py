"""Audio and spike data: reading audio files, the audio front end, the synthetic spoken digits, WAV folders,
the spike dataset files and the one loader that turns SHD, SSC and our datasets into frame tensors."""
