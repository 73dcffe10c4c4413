"""One module per notebook (00 environment ... 06 seq2seq): the measurement loops. Studies never
import each other; a later study reads an earlier study's choice from its result table."""
