"""`python -m pipeline.seq2seq --data_dir=../shared/data [--out=...] [--epochs=N]`."""
from pipeline.seq2seq.run import main

if __name__ == "__main__":
    main()
