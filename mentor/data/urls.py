"""`URLs`: where fast.ai publishes its data sets and pretrained language models, under the
names fastai uses, with the checks fastai publishes for them (`CHECKSUMS`)."""

from __future__ import annotations

from mentor.core.download import Checksum


class URLs:
    """The fast.ai data sets and model archives (`untar_data(URLs.PETS)`).

    Example:
        >>> path = untar_data(URLs.MNIST_SAMPLE)   # .../mnist_sample with train/ and valid/
    """

    S3 = "https://s3.amazonaws.com/fast-ai-"
    URL = f"{S3}sample/"
    S3_IMAGE = f"{S3}imageclas/"
    S3_IMAGELOC = f"{S3}imagelocal/"
    S3_NLP = f"{S3}nlp/"
    S3_COCO = f"{S3}coco/"
    S3_MODEL = f"{S3}modelzoo/"
    GOOGLE = "https://storage.googleapis.com/"

    # the course's samples
    ADULT_SAMPLE = f"{URL}adult_sample.tgz"
    BIWI_SAMPLE = f"{URL}biwi_sample.tgz"
    CAMVID_TINY = f"{URL}camvid_tiny.tgz"
    CIFAR = f"{URL}cifar10.tgz"
    DOGS = f"{URL}dogscats.tgz"
    HUMAN_NUMBERS = f"{URL}human_numbers.tgz"
    IMDB_SAMPLE = f"{URL}imdb_sample.tgz"
    ML_SAMPLE = f"{URL}movie_lens_sample.tgz"
    MNIST_SAMPLE = f"{URL}mnist_sample.tgz"
    MNIST_TINY = f"{URL}mnist_tiny.tgz"
    PLANET_SAMPLE = f"{URL}planet_sample.tgz"
    PLANET_TINY = f"{URL}planet_tiny.tgz"
    ML_100k = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"

    # images
    CALTECH_101 = f"{S3_IMAGE}caltech_101.tgz"
    CARS = f"{S3_IMAGE}stanford-cars.tgz"
    CIFAR_100 = f"{S3_IMAGE}cifar100.tgz"
    CUB_200_2011 = f"{S3_IMAGE}CUB_200_2011.tgz"
    FLOWERS = f"{S3_IMAGE}oxford-102-flowers.tgz"
    FOOD = f"{S3_IMAGE}food-101.tgz"
    IMAGENETTE = f"{S3_IMAGE}imagenette2.tgz"
    IMAGENETTE_160 = f"{S3_IMAGE}imagenette2-160.tgz"
    IMAGENETTE_320 = f"{S3_IMAGE}imagenette2-320.tgz"
    IMAGEWOOF = f"{S3_IMAGE}imagewoof2.tgz"
    IMAGEWOOF_160 = f"{S3_IMAGE}imagewoof2-160.tgz"
    IMAGEWOOF_320 = f"{S3_IMAGE}imagewoof2-320.tgz"
    IMAGEWANG = f"{S3_IMAGE}imagewang.tgz"
    IMAGEWANG_160 = f"{S3_IMAGE}imagewang-160.tgz"
    IMAGEWANG_320 = f"{S3_IMAGE}imagewang-320.tgz"
    LSUN_BEDROOMS = f"{S3_IMAGE}bedroom.tgz"
    MNIST = f"{S3_IMAGE}mnist_png.tgz"
    MNIST_VAR_SIZE_TINY = f"{S3_IMAGE}mnist_var_size_tiny.tgz"
    PETS = f"{S3_IMAGE}oxford-iiit-pet.tgz"

    # localization, segmentation, medical
    BIWI_HEAD_POSE = f"{S3_IMAGELOC}biwi_head_pose.tgz"
    CAMVID = f"{S3_IMAGELOC}camvid.tgz"
    PASCAL_2007 = f"{S3_IMAGELOC}pascal_2007.tgz"
    PASCAL_2012 = f"{S3_IMAGELOC}pascal_2012.tgz"
    SIIM_SMALL = f"{S3_IMAGELOC}siim_small.tgz"
    TCGA_SMALL = f"{S3_IMAGELOC}tcga_small.tgz"
    COCO_SAMPLE = f"{S3_COCO}coco_sample.tgz"
    COCO_TINY = f"{S3_COCO}coco_tiny.tgz"

    # text
    AG_NEWS = f"{S3_NLP}ag_news_csv.tgz"
    AMAZON_REVIEWS = f"{S3_NLP}amazon_review_full_csv.tgz"
    AMAZON_REVIEWS_POLARITY = f"{S3_NLP}amazon_review_polarity_csv.tgz"
    DBPEDIA = f"{S3_NLP}dbpedia_csv.tgz"
    IMDB = f"{S3_NLP}imdb.tgz"
    MT_ENG_FRA = f"{S3_NLP}giga-fren.tgz"
    SOGOU_NEWS = f"{S3_NLP}sogou_news_csv.tgz"
    WIKITEXT = f"{S3_NLP}wikitext-103.tgz"
    WIKITEXT_TINY = f"{S3_NLP}wikitext-2.tgz"
    YAHOO_ANSWERS = f"{S3_NLP}yahoo_answers_csv.tgz"
    YELP_REVIEWS = f"{S3_NLP}yelp_review_full_csv.tgz"
    YELP_REVIEWS_POLARITY = f"{S3_NLP}yelp_review_polarity_csv.tgz"

    # audio
    MACAQUES = f"{GOOGLE}ml-animal-sounds-datasets/macaques.zip"
    ZEBRA_FINCH = f"{GOOGLE}ml-animal-sounds-datasets/zebra_finch.zip"

    # pretrained AWD-LSTM language models on WikiText-103 (forward and backward)
    WT103_FWD = f"{S3_MODEL}wt103-fwd.tgz"
    WT103_BWD = f"{S3_MODEL}wt103-bwd.tgz"


def _fastai(size: int, md5_head: str) -> Checksum:
    return Checksum(size=size, md5_head=md5_head)


# The checks fastai publishes for its archives: the size in bytes and the md5 of the first MiB.
# The model archives (WT103_*) and ML_100k have none.
CHECKSUMS: dict[str, Checksum] = {
    URLs.ADULT_SAMPLE: _fastai(968212, "64eb9d7e23732de0b138f7372d15492f"),
    URLs.BIWI_SAMPLE: _fastai(593774, "9179f4c1435f4b291f0d5b072d60c2c9"),
    URLs.CAMVID_TINY: _fastai(2314212, "2cf6daf91b7a2083ecfa3e9968e9d915"),
    URLs.CIFAR: _fastai(168168549, "a5f8c31371b63a406b23368042812d3c"),
    URLs.DOGS: _fastai(839285364, "3e483c8d6ef2175e9d395a6027eb92b7"),
    URLs.HUMAN_NUMBERS: _fastai(30252, "8a19c3bfa2bcb08cd787e741261f3ea2"),
    URLs.IMDB_SAMPLE: _fastai(571827, "0842e61a9867caa2e6fbdb14fa703d61"),
    URLs.ML_SAMPLE: _fastai(51790, "10961384dfe7c5181460390a460c1f77"),
    URLs.MNIST_SAMPLE: _fastai(3214948, "2dbc7ec6f9259b583af0072c55816a88"),
    URLs.MNIST_TINY: _fastai(342207, "56143e8f24db90d925d82a5a74141875"),
    URLs.PLANET_SAMPLE: _fastai(15523994, "8bfb174b3162f07fbde09b54555bdb00"),
    URLs.PLANET_TINY: _fastai(997569, "490873c5683454d4b2611fb1f00a68a9"),
    URLs.CALTECH_101: _fastai(131740031, "d673425306e98ee4619fcdeef8a0e876"),
    URLs.CARS: _fastai(1957803273, "9045d6673c9ced0889f41816f6bf2f9f"),
    URLs.CIFAR_100: _fastai(169168619, "e5e65dcb54b9d3913f7b8a9ad6607e62"),
    URLs.CUB_200_2011: _fastai(1150585339, "d2acaa99439dff0483c7bbac1bfe2a92"),
    URLs.FLOWERS: _fastai(345236087, "5666e01c1311b4c67fcf20d2b3850a88"),
    URLs.FOOD: _fastai(5686607260, "1a540ebf1fb40b2bf3f2294234ba7907"),
    URLs.IMAGENETTE: _fastai(1557161267, "2c774ecb40005b35d7937d50f5d42336"),
    URLs.IMAGENETTE_160: _fastai(99003388, "c475f8f7617a200ba35b9facc48443c3"),
    URLs.IMAGENETTE_320: _fastai(341663724, "1f1f74f133caff120e575856659b87a2"),
    URLs.IMAGEWOOF: _fastai(1343715595, "2cc1c1e36e20cb6fd24ffb978edcb487"),
    URLs.IMAGEWOOF_160: _fastai(92612825, "3559b194123981a540b87132dbda412f"),
    URLs.IMAGEWOOF_320: _fastai(328387740, "7a1fd92672a559a85de76e4810a20c21"),
    URLs.IMAGEWANG: _fastai(2900347689, "2b7776bac0fc95db72ac8a3b091a3e30"),
    URLs.IMAGEWANG_160: _fastai(191498213, "dab9b1d97b95574ac64122a19bc74ca1"),
    URLs.IMAGEWANG_320: _fastai(669826647, "fff8ac034d60e14fcf7789845e625263"),
    URLs.LSUN_BEDROOMS: _fastai(4579163978, "35d84f38f8a15fe47e66e460c8800d68"),
    URLs.MNIST: _fastai(15683414, "03639f83c4e3d19e0a3a53a8a997c487"),
    URLs.MNIST_VAR_SIZE_TINY: _fastai(565372, "b71a930f4eb744a4a143a6c7ff7ed67f"),
    URLs.PETS: _fastai(811706944, "e4db5c768afd933bb91f5f594d7417a4"),
    URLs.BIWI_HEAD_POSE: _fastai(452316199, "00f4ccf66e8cba184bc292fdc08fb237"),
    URLs.CAMVID: _fastai(598913237, "648371e4f3a833682afb39b08a3ce2aa"),
    URLs.PASCAL_2007: _fastai(1637796771, "433b4706eb7c42bd74e7f784e3fdf244"),
    URLs.PASCAL_2012: _fastai(2618908000, "d90e29e54a4c76c0c6fba8355dcbaca5"),
    URLs.SIIM_SMALL: _fastai(33276453, "2f88ac350dce1d971ecbb5ec722da75f"),
    URLs.TCGA_SMALL: _fastai(14744474, "3ceffe7cf522cb1c60e93dc555d8817f"),
    URLs.COCO_SAMPLE: _fastai(3245877008, "006cd55d633d94b36ecaf661467830ec"),
    URLs.COCO_TINY: _fastai(801038, "367467451ac4fba79a647753c2c66d3a"),
    URLs.AG_NEWS: _fastai(11784419, "b86f328f4dbd072486591cb7a5644dcd"),
    URLs.AMAZON_REVIEWS: _fastai(71606272, "4a1196cf0adaea22f4bc3f592cddde90"),
    URLs.AMAZON_REVIEWS_POLARITY: _fastai(688339454, "676f7e5208ec343c8274b4bb085bc938"),
    URLs.DBPEDIA: _fastai(68341743, "239c7837b9e79db34486f3de6a00e38e"),
    URLs.IMDB: _fastai(144440600, "90f9b1c4ff43a90d67553c9240dc0249"),
    URLs.MT_ENG_FRA: _fastai(2598183296, "69573f58e2c850b90f2f954077041d8c"),
    URLs.SOGOU_NEWS: _fastai(384269937, "950f1366d33be52f5b944f8a8b680902"),
    URLs.WIKITEXT: _fastai(190200704, "2dd8cf8693b3d27e9c8f0a7df054b2c7"),
    URLs.WIKITEXT_TINY: _fastai(4070055, "2a82d47a7b85c8b6a8e068dc4c1d37e7"),
    URLs.YAHOO_ANSWERS: _fastai(319476345, "0632a0d236ef3a529c0fa4429b339f68"),
    URLs.YELP_REVIEWS: _fastai(196146755, "1efd84215ea3e30d90e4c33764b889db"),
    URLs.YELP_REVIEWS_POLARITY: _fastai(166373201, "48c8451c1ad30472334d856b5d294807"),
    URLs.MACAQUES: _fastai(131604586, "44fec3950e61d6a898f16fe30bc9c88d"),
    URLs.ZEBRA_FINCH: _fastai(186624896, "91fa9c4ebfc986b9babc2a805a10e281"),
}


__all__ = ["CHECKSUMS", "URLs"]
