"""Audio inputs: the keyword-spotting MFCC front end (`frontend`) and the waveform
deliverable that carries it inside the `.tflite` (`waveform`)."""
