"""Text: tokenization, vocabularies, language-model and classifier data, AWD-LSTM models
and the ULMFiT learners.

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
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
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.text.backends": (
                "SentencePieceTokenizer",
                "SpacyTokenizer",
            ),
            "mentor.text.block": ("TextBlock",),
            "mentor.text.callbacks": (
                "ModelResetter",
                "RNNRegularizer",
            ),
            "mentor.text.data": (
                "TextDataLoaders",
                "read_text_files",
            ),
            "mentor.text.detokenize": ("detokenize",),
            "mentor.text.learner": (
                "LMLearner",
                "TextLearner",
                "language_model_learner",
                "text_classifier_learner",
            ),
            "mentor.text.loaders": (
                "LMLoader",
                "SortedTextLoader",
                "pad_docs",
            ),
            "mentor.text.models": (
                "AWD_LSTM",
                "AWD_LSTM_SIZES",
                "SequentialRNN",
                "awd_lstm_clas_config",
                "awd_lstm_lm_config",
                "generate",
                "get_language_model",
                "get_text_classifier",
                "simple_gru",
                "simple_lstm",
                "simple_rnn",
            ),
            "mentor.text.tokenize": (
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
                "Tokenizer",
            ),
            "mentor.text.vocab": ("Vocab",),
        },
        submodules=(
            "backends",
            "block",
            "callbacks",
            "data",
            "detokenize",
            "learner",
            "loaders",
            "models",
            "pretrained",
            "tokenize",
            "vocab",
        ),
    )
    # `detokenize` names a submodule and its function: bind the function now (importing the
    # submodule later leaves this binding alone; done lazily, the module would win)
    from mentor.text.detokenize import detokenize
