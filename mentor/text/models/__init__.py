"""Text architectures: AWD-LSTM language models and classifiers, character-level RNNs."""

from mentor.text.models.awd_lstm import (
    AWD_LSTM,
    AWD_LSTM_SIZES,
    EmbeddingDropout,
    LSTMState,
    RNNDropout,
    WeightDropout,
    awd_lstm_clas_config,
    awd_lstm_lm_config,
)
from mentor.text.models.char_rnn import CharRNN, simple_gru, simple_lstm, simple_rnn
from mentor.text.models.core import (
    LinearDecoder,
    PoolingLinearClassifier,
    Resettable,
    SentenceEncoder,
    SequentialRNN,
    awd_lstm_clas_split,
    awd_lstm_lm_split,
    get_language_model,
    get_text_classifier,
    masked_concat_pool,
)
from mentor.text.models.lm_tools import VocabMatch, generate, load_pretrained_lm, match_vocab

__all__ = [
    "AWD_LSTM",
    "AWD_LSTM_SIZES",
    "CharRNN",
    "EmbeddingDropout",
    "LSTMState",
    "LinearDecoder",
    "PoolingLinearClassifier",
    "RNNDropout",
    "Resettable",
    "SentenceEncoder",
    "SequentialRNN",
    "VocabMatch",
    "WeightDropout",
    "awd_lstm_clas_config",
    "awd_lstm_clas_split",
    "awd_lstm_lm_config",
    "awd_lstm_lm_split",
    "generate",
    "get_language_model",
    "get_text_classifier",
    "load_pretrained_lm",
    "masked_concat_pool",
    "match_vocab",
    "simple_gru",
    "simple_lstm",
    "simple_rnn",
]
