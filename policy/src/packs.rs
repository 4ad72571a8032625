//! Curated allowlists. Every entry is an exact `(module, name)` pair with a one-line reason,
//! mirrored in ALLOWLIST.md (a test keeps the two in sync).
//!
//! An entry belongs here only if it rebuilds data: it must not run code, import modules by
//! name, open files or sockets, or hand out attribute-access or call-forwarding primitives.

use crate::Global;

/// One allowlisted global and why it is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Module the pickle imports.
    pub module: &'static str,
    /// Attribute (possibly a dotted qualname) looked up in it.
    pub name: &'static str,
    /// One line on what it rebuilds and why that is safe.
    pub reason: &'static str,
}

impl Entry {
    /// The entry as a [`Global`].
    pub fn global(&self) -> Global {
        Global::new(self.module, self.name)
    }
}

const fn e(module: &'static str, name: &'static str, reason: &'static str) -> Entry {
    Entry {
        module,
        name,
        reason,
    }
}

/// A named allowlist that operators enable as a whole.
#[derive(Debug)]
pub struct Pack {
    /// The name used in `packs = [...]` and `PICKLEGUARD_PACKS`.
    pub name: &'static str,
    /// One line on what it covers.
    pub summary: &'static str,
    /// Its entries, sorted by `(module, name)`.
    pub entries: &'static [Entry],
    /// Packs that enabling this one enables too.
    pub requires: &'static [&'static str],
}

impl Pack {
    /// The entry for `(module, name)`, if the pack has it.
    pub fn find(&self, module: &str, name: &str) -> Option<&'static Entry> {
        let entries = self.entries;
        entries
            .binary_search_by(|entry| (entry.module, entry.name).cmp(&(module, name)))
            .ok()
            .map(|index| &entries[index])
    }
}

/// The default pack, always in force.
pub static ML_PACK: Pack = Pack {
    name: "ml",
    summary: "numpy arrays, torch tensors and the containers around them (always on)",
    entries: ML,
    requires: &[],
};

/// Every pack, `ml` first.
pub static PACKS: &[&Pack] = &[
    &ML_PACK,
    &STDLIB_DATA_PACK,
    &SKLEARN_PACK,
    &PANDAS_PACK,
    &TRANSFORMERS_ARGS_PACK,
    &DILL_PACK,
];

/// The pack called `name`.
pub fn by_name(name: &str) -> Option<&'static Pack> {
    PACKS.iter().copied().find(|pack| pack.name == name)
}

/// stdlib value types that checkpoints and data frames carry.
pub static STDLIB_DATA_PACK: Pack = Pack {
    name: "stdlib-data",
    summary:
        "datetime, decimal, uuid, collections, ipaddress, pathlib and other stdlib value types",
    entries: STDLIB_DATA,
    requires: &[],
};

/// scikit-learn estimators and pipelines as joblib stores them.
pub static SKLEARN_PACK: Pack = Pack {
    name: "sklearn",
    summary: "scikit-learn estimators and pipelines as joblib.dump stores them",
    entries: SKLEARN,
    requires: &["stdlib-data"],
};

/// pandas containers.
pub static PANDAS_PACK: Pack = Pack {
    name: "pandas",
    summary: "pandas DataFrame, Series, Index, dtypes and block reconstruction",
    entries: PANDAS,
    requires: &["stdlib-data"],
};

/// Plain data that dill wraps differently from pickle.
pub static DILL_PACK: Pack = Pack {
    name: "dill",
    summary: "numpy arrays inside dill pickles (dill's functions and code stay hard-denied)",
    entries: DILL,
    requires: &[],
};

const DILL: &[Entry] = &[e(
    "dill._dill",
    "_create_array",
    "dill's ndarray wrapper: calls an allowlisted reconstructor, then __setstate__ and __dict__.update, as REDUCE + BUILD do",
)];

/// Hugging Face TrainingArguments in checkpoints.
pub static TRANSFORMERS_ARGS_PACK: Pack = Pack {
    name: "transformers-args",
    summary: "transformers TrainingArguments and its enums, as checkpoints store them",
    entries: TRANSFORMERS_ARGS,
    requires: &["stdlib-data"],
};

const SKLEARN: &[Entry] = &[
    e("joblib.numpy_pickle", "NumpyArrayWrapper", "joblib's array placeholder; the array bytes are read from the same stream"),
    e("numpy", "float64", "numpy scalar type used as a dtype= parameter"),
    e("numpy", "int64", "numpy scalar type used as a dtype= parameter"),
    e("numpy.random._mt19937", "MT19937", "MEMORY-SAFETY RISK: bit generator whose state `pos` is not range-checked; a bad value crashes on the next draw"),
    e("numpy.random._pcg64", "PCG64", "PCG64 bit generator; state is integers and flags"),
    e("numpy.random._pickle", "__bit_generator_ctor", "numpy RNG constructor helper; calls only the allowlisted bit-generator class it is given"),
    e("numpy.random._pickle", "__generator_ctor", "numpy RNG constructor helper; calls only the allowlisted bit-generator class it is given"),
    e("numpy.random._pickle", "__randomstate_ctor", "numpy RNG constructor helper; calls only the allowlisted bit-generator class it is given"),
    e("numpy.random.bit_generator", "SeedSequence", "numpy SeedSequence: entropy and spawn keys"),
    e("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence", "Cython auto-pickle helper: checks the layout checksum, then sets typed fields"),
    e("sklearn._loss._loss", "CyHalfBinomialLoss", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss._loss", "CyHalfMultinomialLoss", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss._loss", "CyHalfSquaredError", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss", "Cython auto-pickle helper: checks the layout checksum, then sets typed fields"),
    e("sklearn._loss.link", "IdentityLink", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss.link", "Interval", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss.link", "LogitLink", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss.link", "MultinomialLogit", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss.loss", "HalfBinomialLoss", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss.loss", "HalfMultinomialLoss", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn._loss.loss", "HalfSquaredError", "loss or link object of gradient boosting; plain numeric state"),
    e("sklearn.calibration", "CalibratedClassifierCV", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.calibration", "_CalibratedClassifier", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.calibration", "_SigmoidCalibration", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.cluster._kmeans", "KMeans", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.compose._column_transformer", "ColumnTransformer", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.decomposition._pca", "PCA", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.decomposition._truncated_svd", "TruncatedSVD", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.dummy", "DummyClassifier", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.dummy", "DummyRegressor", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.ensemble._forest", "ExtraTreesClassifier", "scikit-learn tree ensemble: plain estimator state (the Tree it holds is checked separately)"),
    e("sklearn.ensemble._forest", "RandomForestClassifier", "scikit-learn tree ensemble: plain estimator state (the Tree it holds is checked separately)"),
    e("sklearn.ensemble._forest", "RandomForestRegressor", "scikit-learn tree ensemble: plain estimator state (the Tree it holds is checked separately)"),
    e("sklearn.ensemble._gb", "GradientBoostingClassifier", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.ensemble._gb", "GradientBoostingRegressor", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingClassifier", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingRegressor", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor", "MEMORY-SAFETY RISK: histogram-GBM tree predictor; node indices are not range-checked at predict time"),
    e("sklearn.feature_extraction.text", "CountVectorizer", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.feature_extraction.text", "TfidfTransformer", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.feature_extraction.text", "TfidfVectorizer", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.impute._base", "SimpleImputer", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.linear_model._base", "LinearRegression", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.linear_model._coordinate_descent", "Lasso", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.linear_model._logistic", "LogisticRegression", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.linear_model._ridge", "Ridge", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.linear_model._sgd_fast", "Hinge", "SGD hinge loss: Hinge(threshold), pure math"),
    e("sklearn.linear_model._stochastic_gradient", "SGDClassifier", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.metrics._dist_metrics", "EuclideanDistance64", "distance metric held by KD/Ball trees; state is validated arrays"),
    e("sklearn.metrics._dist_metrics", "newObj", "cls.__new__(cls) for an allowlisted distance-metric class"),
    e("sklearn.neighbors._ball_tree", "BallTree", "MEMORY-SAFETY RISK: neighbours tree; index arrays are not range-checked at query time"),
    e("sklearn.neighbors._ball_tree", "newObj", "cls.__new__(cls) for an allowlisted neighbours tree class"),
    e("sklearn.neighbors._classification", "KNeighborsClassifier", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.neighbors._kd_tree", "KDTree", "MEMORY-SAFETY RISK: neighbours tree; index arrays are not range-checked at query time"),
    e("sklearn.neighbors._kd_tree", "newObj", "cls.__new__(cls) for an allowlisted neighbours tree class"),
    e("sklearn.neural_network._multilayer_perceptron", "MLPClassifier", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.pipeline", "Pipeline", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.preprocessing._data", "MinMaxScaler", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.preprocessing._data", "StandardScaler", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.preprocessing._encoders", "OneHotEncoder", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.preprocessing._encoders", "OrdinalEncoder", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.preprocessing._function_transformer", "FunctionTransformer", "remainder of ColumnTransformer(passthrough); its func can only be another allowlisted global"),
    e("sklearn.preprocessing._label", "LabelBinarizer", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.preprocessing._label", "LabelEncoder", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.svm._classes", "LinearSVC", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.svm._classes", "SVC", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.svm._classes", "SVR", "scikit-learn estimator: NEWOBJ + BUILD into __dict__; no code runs at load"),
    e("sklearn.tree._classes", "DecisionTreeClassifier", "scikit-learn tree ensemble: plain estimator state (the Tree it holds is checked separately)"),
    e("sklearn.tree._classes", "DecisionTreeRegressor", "scikit-learn tree ensemble: plain estimator state (the Tree it holds is checked separately)"),
    e("sklearn.tree._classes", "ExtraTreeClassifier", "scikit-learn tree ensemble: plain estimator state (the Tree it holds is checked separately)"),
    e("sklearn.tree._tree", "Tree", "MEMORY-SAFETY RISK: Cython tree whose node arrays are not range-checked; crafted nodes crash at predict time"),
];

const PANDAS: &[Entry] = &[
    e("datetime", "timedelta", "datetime value from its range-checked state"),
    e("datetime", "timezone", "datetime value from its range-checked state"),
    e("dateutil.relativedelta", "relativedelta", "dateutil relative delta: numeric fields"),
    e("dateutil.tz.tz", "tzutc", "dateutil UTC tzinfo, no arguments"),
    e("pandas", "BooleanDtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "Categorical", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "CategoricalDtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "CategoricalIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "DataFrame", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "DateOffset", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "DatetimeIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "DatetimeTZDtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "Float64Dtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "Index", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "Int64Dtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "Interval", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "IntervalDtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "IntervalIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "MultiIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "NA", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "Period", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "PeriodDtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "PeriodIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "RangeIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "Series", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "SparseDtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "StringDtype", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas", "TimedeltaIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked", "Cython auto-pickle helper: checks the layout checksum, then sets typed fields"),
    e("pandas._libs.internals", "_unpickle_block", "MEMORY-SAFETY RISK: pandas block placement is not validated; crafted placements crash on access"),
    e("pandas._libs.interval", "__pyx_unpickle_IntervalMixin", "Cython auto-pickle helper: checks the layout checksum, then sets typed fields"),
    e("pandas._libs.sparse", "IntIndex", "sparse index; its constructor checks integrity"),
    e("pandas._libs.tslibs.nattype", "_nat_unpickle", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas._libs.tslibs.offsets", "BusinessDay", "pandas date offset from ints and bools"),
    e("pandas._libs.tslibs.offsets", "Day", "pandas date offset from ints and bools"),
    e("pandas._libs.tslibs.offsets", "Hour", "pandas date offset from ints and bools"),
    e("pandas._libs.tslibs.offsets", "MonthBegin", "pandas date offset from ints and bools"),
    e("pandas._libs.tslibs.offsets", "MonthEnd", "pandas date offset from ints and bools"),
    e("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas._libs.tslibs.timestamps", "_unpickle_timestamp", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "BooleanArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "DatetimeArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "FloatingArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "IntegerArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "IntervalArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "PeriodArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "SparseArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "StringArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.arrays", "TimedeltaArray", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.core.indexes.base", "_new_Index", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.core.indexes.datetimes", "_new_DatetimeIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.core.indexes.interval", "_new_IntervalIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.core.indexes.timedeltas", "_new_TimedeltaIndex", "pandas container, dtype, scalar or its reconstructor; data only"),
    e("pandas.core.internals.managers", "BlockManager", "MEMORY-SAFETY RISK: pandas block placement is not validated; crafted placements crash on access"),
    e("pandas.core.internals.managers", "SingleBlockManager", "MEMORY-SAFETY RISK: pandas block placement is not validated; crafted placements crash on access"),
];

const TRANSFORMERS_ARGS: &[Entry] = &[
    e("accelerate.state", "PartialState", "accelerate state cached in TrainingArguments; rebuilt without running __init__"),
    e("accelerate.utils.dataclasses", "DistributedType", "str enum: looks up an existing member by value"),
    e("transformers.debug_utils", "DebugOption", "str enum: looks up an existing member by value"),
    e("transformers.generation.configuration_utils", "GenerationConfig", "attribute bag rebuilt by BUILD; no I/O at load"),
    e("transformers.trainer_pt_utils", "AcceleratorConfig", "plain dataclass of flags; __post_init__ does not run"),
    e("transformers.trainer_utils", "HubStrategy", "str enum: looks up an existing member by value"),
    e("transformers.trainer_utils", "IntervalStrategy", "str enum: looks up an existing member by value"),
    e("transformers.trainer_utils", "SaveStrategy", "str enum: looks up an existing member by value"),
    e("transformers.trainer_utils", "SchedulerType", "str enum: looks up an existing member by value"),
    e("transformers.training_args", "OptimizerNames", "str enum: looks up an existing member by value"),
    e("transformers.training_args", "TrainingArguments", "dataclass rebuilt by NEWOBJ + BUILD; __post_init__ does not run, nothing is created. Its fields are values Trainer acts on later"),
    e("transformers.training_args_seq2seq", "Seq2SeqTrainingArguments", "dataclass rebuilt by NEWOBJ + BUILD; __post_init__ does not run, nothing is created. Its fields are values Trainer acts on later"),
];

const STDLIB_DATA: &[Entry] = &[
    e("argparse", "Namespace", "attribute bag"),
    e(
        "array",
        "_array_reconstructor",
        "array.array from a typecode and bytes or a list",
    ),
    e(
        "array",
        "array",
        "array.array from a typecode and bytes or a list",
    ),
    e(
        "builtins",
        "int",
        "builtin value type, safe to call with no arguments (defaultdict factory)",
    ),
    e(
        "builtins",
        "list",
        "builtin value type, safe to call with no arguments (defaultdict factory)",
    ),
    e(
        "builtins",
        "object",
        "base class copyreg._reconstructor passes at protocols 0-1",
    ),
    e(
        "builtins",
        "range",
        "builtin value type, safe to call with no arguments (defaultdict factory)",
    ),
    e(
        "collections",
        "ChainMap",
        "container of already-unpickled items",
    ),
    e(
        "collections",
        "Counter",
        "container of already-unpickled items",
    ),
    e(
        "collections",
        "defaultdict",
        "dict whose factory is another allowlisted global, called with no arguments",
    ),
    e(
        "collections",
        "deque",
        "container of already-unpickled items",
    ),
    e(
        "copyreg",
        "_reconstructor",
        "protocol 0-1 rebuild of a plain object; calls only allowlisted classes passed to it",
    ),
    e(
        "datetime",
        "date",
        "datetime value from its range-checked state",
    ),
    e(
        "datetime",
        "datetime",
        "datetime value from its range-checked state",
    ),
    e(
        "datetime",
        "time",
        "datetime value from its range-checked state",
    ),
    e(
        "datetime",
        "timedelta",
        "datetime value from its range-checked state",
    ),
    e(
        "datetime",
        "timezone",
        "datetime value from its range-checked state",
    ),
    e(
        "decimal",
        "Decimal",
        "decimal from a string; exponents are stored lazily",
    ),
    e(
        "ipaddress",
        "IPv4Address",
        "IP address or network parsed from an int or str; no DNS",
    ),
    e(
        "ipaddress",
        "IPv4Interface",
        "IP address or network parsed from an int or str; no DNS",
    ),
    e(
        "ipaddress",
        "IPv4Network",
        "IP address or network parsed from an int or str; no DNS",
    ),
    e(
        "ipaddress",
        "IPv6Address",
        "IP address or network parsed from an int or str; no DNS",
    ),
    e(
        "ipaddress",
        "IPv6Interface",
        "IP address or network parsed from an int or str; no DNS",
    ),
    e(
        "ipaddress",
        "IPv6Network",
        "IP address or network parsed from an int or str; no DNS",
    ),
    e(
        "pathlib",
        "PosixPath",
        "path object built from its parts; no file-system access",
    ),
    e(
        "pathlib",
        "PurePosixPath",
        "path object built from its parts; no file-system access",
    ),
    e(
        "pathlib",
        "PureWindowsPath",
        "path object built from its parts; no file-system access",
    ),
    e("types", "SimpleNamespace", "attribute bag"),
    e(
        "uuid",
        "SafeUUID",
        "str enum: looks up an existing member by value",
    ),
    e("uuid", "UUID", "UUID from an int"),
];

const TORCH_DTYPE: &str = "torch.dtype constant, pickled by name; inert, not callable";
const TORCH_STORAGE: &str = "typed storage class named in checkpoint storage records; built only from a size or a sequence, never from a pointer or file";
const TORCH_QSCHEME: &str = "torch.qscheme constant of quantized tensors; inert, not callable";

/// The default pack: numpy arrays, torch tensors and the containers around them, drawn from
/// what real numpy 1/2 and torch pickles ask for. Sorted by `(module, name)`.
pub const ML: &[Entry] = &[
    e("_codecs", "encode", "turns the latin-1 str that protocols 0-2 use for bytes back into bytes; codecs resolve only within the encodings package"),
    e("builtins", "bytearray", "byte buffer from bytes, or a str and an encoding"),
    e("builtins", "bytes", "how protocols 0-2 write an empty bytes object"),
    e("builtins", "complex", "complex number from two numbers"),
    e("builtins", "frozenset", "immutable set of already-unpickled items"),
    e("builtins", "set", "set of already-unpickled items"),
    e("builtins", "slice", "slice of already-unpickled bounds"),
    e("collections", "OrderedDict", "ordered mapping; every state_dict is one"),
    e("numpy", "dtype", "dtype descriptor, state validated in C"),
    e("numpy", "matrix", "ndarray subclass rebuilt like any array"),
    e("numpy", "ndarray", "the array type passed to _reconstruct; construction validates shape, strides and buffer"),
    e("numpy", "recarray", "numpy 1 name of the record-array ndarray subclass"),
    e("numpy", "record", "structured scalar type used in record-array dtypes"),
    e("numpy._core._internal", "_convert_to_stringdtype_kwargs", "numpy 2 StringDType from its coerce and na_object settings"),
    e("numpy._core.multiarray", "_reconstruct", "numpy 2 empty-array constructor; the data comes from a length-checked BUILD state"),
    e("numpy._core.multiarray", "scalar", "numpy 2 scalar from a dtype and size-checked raw bytes"),
    e("numpy._core.numeric", "_frombuffer", "numpy 2 array over a protocol-5 buffer (frombuffer + reshape)"),
    e("numpy.core.multiarray", "_reconstruct", "numpy 1 empty-array constructor; the data comes from a length-checked BUILD state"),
    e("numpy.core.multiarray", "scalar", "numpy 1 scalar from a dtype and size-checked raw bytes"),
    e("numpy.core.numeric", "_frombuffer", "numpy 1 array over a protocol-5 buffer (frombuffer + reshape)"),
    e("numpy.rec", "recarray", "numpy 2 name of the record-array ndarray subclass"),
    e("torch", "BFloat16Storage", TORCH_STORAGE),
    e("torch", "BoolStorage", TORCH_STORAGE),
    e("torch", "ByteStorage", TORCH_STORAGE),
    e("torch", "CharStorage", TORCH_STORAGE),
    e("torch", "ComplexDoubleStorage", TORCH_STORAGE),
    e("torch", "ComplexFloatStorage", TORCH_STORAGE),
    e("torch", "DoubleStorage", TORCH_STORAGE),
    e("torch", "FloatStorage", TORCH_STORAGE),
    e("torch", "HalfStorage", TORCH_STORAGE),
    e("torch", "IntStorage", TORCH_STORAGE),
    e("torch", "LongStorage", TORCH_STORAGE),
    e("torch", "QInt32Storage", TORCH_STORAGE),
    e("torch", "QInt8Storage", TORCH_STORAGE),
    e("torch", "QUInt2x4Storage", TORCH_STORAGE),
    e("torch", "QUInt4x2Storage", TORCH_STORAGE),
    e("torch", "QUInt8Storage", TORCH_STORAGE),
    e("torch", "ShortStorage", TORCH_STORAGE),
    e("torch", "Size", "tensor shape, a tuple of ints"),
    e("torch", "Tensor", "tensor type that _rebuild_from_type_v2 casts to"),
    e("torch", "bcomplex32", TORCH_DTYPE),
    e("torch", "bfloat16", TORCH_DTYPE),
    e("torch", "bits16", TORCH_DTYPE),
    e("torch", "bits1x8", TORCH_DTYPE),
    e("torch", "bits2x4", TORCH_DTYPE),
    e("torch", "bits4x2", TORCH_DTYPE),
    e("torch", "bits8", TORCH_DTYPE),
    e("torch", "bool", TORCH_DTYPE),
    e("torch", "complex128", TORCH_DTYPE),
    e("torch", "complex32", TORCH_DTYPE),
    e("torch", "complex64", TORCH_DTYPE),
    e("torch", "device", "device descriptor such as `cpu`; initialises nothing"),
    e("torch", "float16", TORCH_DTYPE),
    e("torch", "float32", TORCH_DTYPE),
    e("torch", "float4_e2m1fn_x2", TORCH_DTYPE),
    e("torch", "float64", TORCH_DTYPE),
    e("torch", "float8_e4m3fn", TORCH_DTYPE),
    e("torch", "float8_e4m3fnuz", TORCH_DTYPE),
    e("torch", "float8_e5m2", TORCH_DTYPE),
    e("torch", "float8_e5m2fnuz", TORCH_DTYPE),
    e("torch", "float8_e8m0fnu", TORCH_DTYPE),
    e("torch", "int1", TORCH_DTYPE),
    e("torch", "int16", TORCH_DTYPE),
    e("torch", "int2", TORCH_DTYPE),
    e("torch", "int3", TORCH_DTYPE),
    e("torch", "int32", TORCH_DTYPE),
    e("torch", "int4", TORCH_DTYPE),
    e("torch", "int5", TORCH_DTYPE),
    e("torch", "int6", TORCH_DTYPE),
    e("torch", "int64", TORCH_DTYPE),
    e("torch", "int7", TORCH_DTYPE),
    e("torch", "int8", TORCH_DTYPE),
    e("torch", "per_channel_affine", TORCH_QSCHEME),
    e("torch", "per_channel_affine_float_qparams", TORCH_QSCHEME),
    e("torch", "per_channel_symmetric", TORCH_QSCHEME),
    e("torch", "per_tensor_affine", TORCH_QSCHEME),
    e("torch", "per_tensor_symmetric", TORCH_QSCHEME),
    e("torch", "qint32", TORCH_DTYPE),
    e("torch", "qint8", TORCH_DTYPE),
    e("torch", "quint2x4", TORCH_DTYPE),
    e("torch", "quint4x2", TORCH_DTYPE),
    e("torch", "quint8", TORCH_DTYPE),
    e("torch", "uint1", TORCH_DTYPE),
    e("torch", "uint16", TORCH_DTYPE),
    e("torch", "uint2", TORCH_DTYPE),
    e("torch", "uint3", TORCH_DTYPE),
    e("torch", "uint32", TORCH_DTYPE),
    e("torch", "uint4", TORCH_DTYPE),
    e("torch", "uint5", TORCH_DTYPE),
    e("torch", "uint6", TORCH_DTYPE),
    e("torch", "uint64", TORCH_DTYPE),
    e("torch", "uint7", TORCH_DTYPE),
    e("torch", "uint8", TORCH_DTYPE),
    e("torch._tensor", "_rebuild_from_type_v2", "calls an already-allowlisted rebuilder and casts to an allowlisted tensor type"),
    e("torch._utils", "_rebuild_meta_tensor_no_storage", "meta-device tensor: a shape with no data"),
    e("torch._utils", "_rebuild_parameter", "wraps an already-rebuilt tensor as nn.Parameter"),
    e("torch._utils", "_rebuild_parameter_with_state", "as _rebuild_parameter, then sets already-unpickled attributes on it"),
    e("torch._utils", "_rebuild_qtensor", "quantized tensor over a storage; scales and bounds are checked"),
    e("torch._utils", "_rebuild_tensor", "legacy tensor view over a storage, used by the v2 and v3 rebuilders"),
    e("torch._utils", "_rebuild_tensor_v2", "tensor view over an archive storage (set_ grows, never reads past, the storage)"),
    e("torch._utils", "_rebuild_tensor_v3", "as _rebuild_tensor_v2 with an explicit dtype"),
    e("torch.serialization", "_get_layout", "looks a layout name up among torch.layout constants"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hard_deny;

    #[test]
    fn packs_are_sorted_unique_and_findable() {
        for pack in PACKS {
            for pair in pack.entries.windows(2) {
                assert!(
                    (pair[0].module, pair[0].name) < (pair[1].module, pair[1].name),
                    "pack {} must be sorted and unique: {:?} then {:?}",
                    pack.name,
                    pair[0],
                    pair[1]
                );
            }
            for entry in pack.entries {
                assert_eq!(pack.find(entry.module, entry.name), Some(entry));
            }
            assert_eq!(by_name(pack.name).map(|p| p.name), Some(pack.name));
        }
        assert_eq!(ML_PACK.find("collections", "Counter"), None);
    }

    #[test]
    fn no_entry_is_hard_denied_or_unexplained() {
        for entry in PACKS.iter().flat_map(|pack| pack.entries) {
            assert_eq!(
                hard_deny::check(entry.module, entry.name),
                None,
                "{entry:?}"
            );
            assert!(!entry.reason.trim().is_empty(), "{entry:?}");
            assert!(
                !entry.reason.contains('\n'),
                "reasons are one line: {entry:?}"
            );
        }
    }
}

/// Keeps ALLOWLIST.md's tables equal to the code. `make allowlist` rewrites them.
#[cfg(test)]
mod allowlist_md {
    use crate::hard_deny;

    const BEGIN: &str = "<!-- generated by `make allowlist`: begin -->";
    const END: &str = "<!-- generated by `make allowlist`: end -->";

    fn tables() -> String {
        let mut out = String::from(
            "\n### Pack `ml` (the default)\n\n| module | name | why it is safe |\n|---|---|---|\n",
        );
        for entry in super::ML {
            out.push_str(&format!(
                "| `{}` | `{}` | {} |\n",
                entry.module, entry.name, entry.reason
            ));
        }
        out.push_str(
            "\n### Hard-denied modules (with every submodule)\n\n| module | why |\n|---|---|\n",
        );
        let mut modules = hard_deny::MODULES.to_vec();
        modules.sort();
        for (module, why) in modules {
            out.push_str(&format!("| `{module}` | {why} |\n"));
        }
        out.push_str("\n### Hard-denied names\n\n| module | name | why |\n|---|---|---|\n");
        let mut names = hard_deny::NAMES.to_vec();
        names.sort();
        for (module, name, why) in names {
            out.push_str(&format!("| `{module}` | `{name}` | {why} |\n"));
        }
        out.push('\n');
        out
    }

    #[test]
    fn allowlist_md_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ALLOWLIST.md");
        let text = std::fs::read_to_string(path).expect("ALLOWLIST.md");
        let (head, rest) = text
            .split_once(BEGIN)
            .expect("begin marker in ALLOWLIST.md");
        let (current, tail) = rest.split_once(END).expect("end marker in ALLOWLIST.md");
        let expected = tables();
        if std::env::var_os("PICKLEGUARD_BLESS").is_some() {
            std::fs::write(path, format!("{head}{BEGIN}{expected}{END}{tail}")).expect("write");
            return;
        }
        assert!(
            current == expected,
            "ALLOWLIST.md is out of date with the policy code: run `make allowlist`"
        );
    }
}
