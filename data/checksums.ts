/**
 * The four FashionMNIST files: names, checksums of the official `.gz` files and of their
 * uncompressed IDX content, sizes and example counts; and the official download mirrors.
 *
 * @module
 */

/** Which of the four files: training or test set, images or labels. */
export type IdxFileKey = "trainImages" | "trainLabels" | "testImages" | "testLabels";

/** Everything known in advance about one gzipped IDX file. */
export interface IdxFileSpec {
  /** File name on the mirrors and in the cache, e.g. `train-images-idx3-ubyte.gz`. */
  readonly name: string;
  /** Images (IDX3, magic 0x00000803) or labels (IDX1, magic 0x00000801). */
  readonly kind: "images" | "labels";
  /** MD5 of the official `.gz` file (what torchvision checks), lower-case hex. */
  readonly md5: string;
  /** Size of the official `.gz` file in bytes (used for progress when the server gives none). */
  readonly bytes: number;
  /**
   * SHA-256 of the uncompressed IDX bytes, lower-case hex. Copies whose gzip header differs
   * (Debian's package rewrites it) are verified by this.
   */
  readonly sha256: string;
  /** Size of the uncompressed IDX bytes. */
  readonly rawBytes: number;
  /** Number of examples in the file. */
  readonly count: number;
}

/** The four files of a dataset in the MNIST layout. */
export type IdxFileSet = Readonly<Record<IdxFileKey, IdxFileSpec>>;

/** The order in which the files are fetched and reported. */
export const IDX_FILE_KEYS: readonly IdxFileKey[] = [
  "trainImages",
  "trainLabels",
  "testImages",
  "testLabels",
];

/**
 * The official FashionMNIST release (Zalando Research, MIT licence). MD5s as in torchvision;
 * SHA-256s of the uncompressed content as measured on the official files.
 */
export const FASHION_MNIST_FILES: IdxFileSet = {
  trainImages: {
    name: "train-images-idx3-ubyte.gz",
    kind: "images",
    md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    bytes: 26_421_880,
    sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    rawBytes: 47_040_016,
    count: 60_000,
  },
  trainLabels: {
    name: "train-labels-idx1-ubyte.gz",
    kind: "labels",
    md5: "25c81989df183df01b3e8a0aad5dffbe",
    bytes: 29_515,
    sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    rawBytes: 60_008,
    count: 60_000,
  },
  testImages: {
    name: "t10k-images-idx3-ubyte.gz",
    kind: "images",
    md5: "bef4ecab320f06d8554ea6380940ec79",
    bytes: 4_422_102,
    sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    rawBytes: 7_840_016,
    count: 10_000,
  },
  testLabels: {
    name: "t10k-labels-idx1-ubyte.gz",
    kind: "labels",
    md5: "bb300cfdad3c16e7a12a480ee83cd310",
    bytes: 5_148,
    sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    rawBytes: 10_008,
    count: 10_000,
  },
};

/**
 * Official mirrors, tried in order: the dataset authors' S3 website bucket (torchvision's
 * mirror), then the raw files of the zalandoresearch/fashion-mnist GitHub repository.
 */
export const FASHION_MNIST_MIRRORS: readonly string[] = [
  "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
  "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
];

/** Where Linux distributions install the dataset (Debian/Ubuntu: `dataset-fashion-mnist`). */
export const SYSTEM_DATA_DIRS: readonly string[] = ["/usr/share/datasets/fashion-mnist"];
