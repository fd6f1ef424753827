"""Text: tokenization, vocabularies, language-model and classifier data, AWD-LSTM models
and the ULMFiT learners."""

from mentor.text.backends import SentencePieceTokenizer, SpacyTokenizer
from mentor.text.block import TextBlock
from mentor.text.callbacks import ModelResetter, RNNRegularizer
from mentor.text.data import TextDataLoaders, read_text_files
from mentor.text.detokenize import detokenize
from mentor.text.learner import (
    LMLearner,
    TextLearner,
    language_model_learner,
    text_classifier_learner,
)
from mentor.text.loaders import LMLoader, SortedTextLoader, pad_docs
from mentor.text.models import (
    AWD_LSTM,
    AWD_LSTM_SIZES,
    SequentialRNN,
    awd_lstm_clas_config,
    awd_lstm_lm_config,
    generate,
    get_language_model,
    get_text_classifier,
    simple_gru,
    simple_lstm,
    simple_rnn,
)
from mentor.text.tokenize import (
    BOS,
    EOS,
    FLD,
    PAD,
    SPECIAL_TOKENS,
    TK_MAJ,
    TK_REP,
    TK_UP,
    TK_WREP,
    UNK,
    CharTokenizer,
    Tokenizer,
)
from mentor.text.vocab import Vocab

__all__ = [
    "AWD_LSTM",
    "AWD_LSTM_SIZES",
    "BOS",
    "EOS",
    "FLD",
    "PAD",
    "SPECIAL_TOKENS",
    "TK_MAJ",
    "TK_REP",
    "TK_UP",
    "TK_WREP",
    "UNK",
    "CharTokenizer",
    "LMLearner",
    "LMLoader",
    "ModelResetter",
    "RNNRegularizer",
    "SentencePieceTokenizer",
    "SequentialRNN",
    "SortedTextLoader",
    "SpacyTokenizer",
    "TextBlock",
    "TextDataLoaders",
    "TextLearner",
    "Tokenizer",
    "Vocab",
    "awd_lstm_clas_config",
    "awd_lstm_lm_config",
    "detokenize",
    "generate",
    "get_language_model",
    "get_text_classifier",
    "language_model_learner",
    "pad_docs",
    "read_text_files",
    "simple_gru",
    "simple_lstm",
    "simple_rnn",
    "text_classifier_learner",
]
