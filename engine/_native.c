/* The serving hot path in C: text -> feature row -> every model's raw score, in one pass.
 *
 * Python builds n-grams as strings: for a 500-character alert that is ~2,000 small objects and most of a
 * prediction's time. Here n-grams are never materialised. Each term is hashed from the text's code points
 * (FNV-1a, then a 64-bit finalizer), looked up in an open-addressing table built from the fitted vocabulary,
 * counted, weighted by tf-idf, L2-normalised per block and multiplied into the fused coefficient matrix.
 *
 * The analyzers reproduce scikit-learn's exactly: the word analyzer is the default token pattern
 * `(?u)\b\w\w+\b` (runs of two or more characters that are Py_UNICODE_ISALNUM or '_', which is what `re`
 * calls \w) joined into word n-grams; the character analyzer is `char_wb` (engine.features.CharNgrams, which
 * calls char_wb() below when training). Python lowercases the text (str.lower) before it reaches C.
 * numeric_features() is the single definition of the magnitude features, used by training and serving.
 * Python checks the whole scorer against the scikit-learn objects on probe texts before it serves.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* -- text access -------------------------------------------------------------------------------------- */

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n;
} Text;

static int text_of(PyObject *o, Text *t) {
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected str, got %.80s", Py_TYPE(o)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(o) < 0) return -1;
#endif
    t->kind = PyUnicode_KIND(o);
    t->data = PyUnicode_DATA(o);
    t->n = PyUnicode_GET_LENGTH(o);
    return 0;
}

/* Code point i, or 0 past either end: 0 is no digit, space or word character, and equals no literal
 * compared against below, so it behaves exactly like "no character" in the regex semantics. */
static inline Py_UCS4 ch(const Text *t, Py_ssize_t i) {
    return (i >= 0 && i < t->n) ? PyUnicode_READ(t->kind, t->data, i) : 0;
}

/* Character classes, with a table for ASCII: the Unicode database lookups are function calls. */
enum { DIGIT = 1, SPACE = 2, WORD = 4 };
static unsigned char ascii_class[128];

static void init_classes(void) {
    for (int c = 0; c < 128; c++) {
        ascii_class[c] = (Py_UNICODE_ISDECIMAL(c) ? DIGIT : 0) | (Py_UNICODE_ISSPACE(c) ? SPACE : 0) |
                         (c == '_' || Py_UNICODE_ISALNUM(c) ? WORD : 0);
    }
}

static inline int is_digit(Py_UCS4 c) { /* re's \d */
    return c < 128 ? (ascii_class[c] & DIGIT) != 0 : Py_UNICODE_ISDECIMAL(c) != 0;
}
static inline int is_space(Py_UCS4 c) { /* re's \s and str.split() */
    return c < 128 ? (ascii_class[c] & SPACE) != 0 : Py_UNICODE_ISSPACE(c) != 0;
}
static inline int is_word(Py_UCS4 c) { /* re's \w */
    return c < 128 ? (ascii_class[c] & WORD) != 0 : Py_UNICODE_ISALNUM(c) != 0;
}

static inline int boundary(const Text *t, Py_ssize_t i) { /* re's \b before position i */
    return is_word(ch(t, i - 1)) != is_word(ch(t, i));
}

static Py_ssize_t digit_run(const Text *t, Py_ssize_t i) {
    Py_ssize_t j = i;
    while (is_digit(ch(t, j))) j++;
    return j - i;
}

/* float() of text[start:end] with commas dropped (digits may be any Unicode decimal, as float() allows). */
static double parse_number(const Text *t, Py_ssize_t start, Py_ssize_t end) {
    char small[64];
    char *buf = small;
    if (end - start + 1 > (Py_ssize_t)sizeof small) {
        buf = PyMem_Malloc(end - start + 1);
        if (buf == NULL) return NAN;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = ch(t, i);
        if (c == ',') continue;
        buf[k++] = c == '.' ? '.' : (char)('0' + Py_UNICODE_TODECIMAL(c));
    }
    buf[k] = '\0';
    double v = PyOS_string_to_double(buf, NULL, NULL); /* overflow gives inf, as float() does */
    if (buf != small) PyMem_Free(buf);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0.0;
    }
    return v;
}

/* -- hashing and the vocabulary table ----------------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static inline uint64_t fnv(uint64_t h, Py_UCS4 c) { return (h ^ c) * FNV_PRIME; }

static inline uint64_t finish(uint64_t h) { /* murmur3's finalizer: FNV leaves low bits poorly mixed */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

typedef struct {
    uint64_t key;
    int64_t col; /* -1: empty slot; key and column share a cache line */
} Slot;

typedef struct {
    Slot *slots;
    uint64_t mask;
} Table;

static uint64_t hash_str(const Text *t) {
    uint64_t h = FNV_OFFSET;
    for (Py_ssize_t i = 0; i < t->n; i++) h = fnv(h, PyUnicode_READ(t->kind, t->data, i));
    return finish(h);
}

static inline int64_t lookup(const Table *tb, uint64_t key) {
    uint64_t i = key & tb->mask;
    while (tb->slots[i].col >= 0) {
        if (tb->slots[i].key == key) return tb->slots[i].col;
        i = (i + 1) & tb->mask;
    }
    return -1;
}

static void table_free(Table *tb) {
    PyMem_Free(tb->slots);
    tb->slots = NULL;
}

/* A table over `terms` (term i is column i), at most half full. Two terms with one hash: ValueError. */
static int table_build(Table *tb, PyObject *terms) {
    PyObject *seq = PySequence_Fast(terms, "vocabulary terms must be a sequence of str");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint64_t size = 16;
    while (size < 2 * (uint64_t)n) size <<= 1;
    tb->mask = size - 1;
    tb->slots = PyMem_Malloc(size * sizeof(Slot));
    if (tb->slots == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (uint64_t i = 0; i < size; i++) tb->slots[i] = (Slot){0, -1};
    for (Py_ssize_t j = 0; j < n; j++) {
        Text t;
        if (text_of(PySequence_Fast_GET_ITEM(seq, j), &t) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        uint64_t key = hash_str(&t), i = key & tb->mask;
        while (tb->slots[i].col >= 0) {
            if (tb->slots[i].key == key) {
                Py_DECREF(seq);
                PyErr_SetString(PyExc_ValueError, "two vocabulary terms share a hash");
                return -1;
            }
            i = (i + 1) & tb->mask;
        }
        tb->slots[i] = (Slot){key, j};
    }
    Py_DECREF(seq);
    return 0;
}

/* -- analyzers: each found term is handed to a sink ------------------------------------------------- */

typedef struct Sink Sink;
struct Sink {
    int (*term)(Sink *, uint64_t key, const Text *t, Py_ssize_t start, Py_ssize_t len, int padded);
};

/* Scratch reused between calls: the word analyzer's token spans, the character analyzer's padded word. */
typedef struct {
    Py_ssize_t *start, *len;
    Py_ssize_t n, cap;
    Py_UCS4 *word;
    Py_ssize_t word_cap;
} Tokens;

static int tokens_push(Tokens *tk, Py_ssize_t start, Py_ssize_t len) {
    if (tk->n == tk->cap) {
        Py_ssize_t cap = tk->cap ? 2 * tk->cap : 256;
        Py_ssize_t *s = PyMem_Realloc(tk->start, cap * sizeof(Py_ssize_t));
        if (s == NULL) return -1;
        tk->start = s;
        Py_ssize_t *l = PyMem_Realloc(tk->len, cap * sizeof(Py_ssize_t));
        if (l == NULL) return -1;
        tk->len = l;
        tk->cap = cap;
    }
    tk->start[tk->n] = start;
    tk->len[tk->n] = len;
    tk->n++;
    return 0;
}

/* Word n-grams (min_n..max_n tokens joined by one space) of an already lowercased text. */
static int word_terms(const Text *t, int min_n, int max_n, Tokens *tk, Sink *sink) {
    tk->n = 0;
    Py_ssize_t i = 0;
    while (i < t->n) {
        if (!is_word(PyUnicode_READ(t->kind, t->data, i))) {
            i++;
            continue;
        }
        Py_ssize_t j = i + 1;
        while (j < t->n && is_word(PyUnicode_READ(t->kind, t->data, j))) j++;
        if (j - i >= 2 && tokens_push(tk, i, j - i) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        i = j;
    }
    for (Py_ssize_t s = 0; s < tk->n; s++) {
        uint64_t h = FNV_OFFSET;
        for (int k = 0; k < max_n && s + k < tk->n; k++) {
            if (k > 0) h = fnv(h, ' ');
            Py_ssize_t a = tk->start[s + k], e = a + tk->len[s + k];
            for (Py_ssize_t p = a; p < e; p++) h = fnv(h, PyUnicode_READ(t->kind, t->data, p));
            if (k + 1 >= min_n) {
                Py_ssize_t start = tk->start[s], end = e;
                if (sink->term(sink, finish(h), t, start, end - start, 0) < 0) return -1;
            }
        }
    }
    return 0;
}

/* scikit-learn's char_wb: n-grams of each whitespace-separated word padded with one space on each side;
 * a padded word shorter than min_n counts once, whole. `ordered`: in scikit-learn's order (all min_n-grams
 * of a word, then the next length...), else by start position, extending one hash through the lengths. */
static int char_terms(const Text *t, int min_n, int max_n, int ordered, Tokens *tk, Sink *sink) {
    Py_ssize_t i = 0;
    while (i < t->n) {
        if (is_space(PyUnicode_READ(t->kind, t->data, i))) {
            i++;
            continue;
        }
        Py_ssize_t ws = i;
        while (i < t->n && !is_space(PyUnicode_READ(t->kind, t->data, i))) i++;
        Py_ssize_t size = i - ws + 2;
        if (size > tk->word_cap) {
            Py_UCS4 *w = PyMem_Realloc(tk->word, size * sizeof(Py_UCS4));
            if (w == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            tk->word = w;
            tk->word_cap = size;
        }
        Py_UCS4 *w = tk->word;
        w[0] = w[size - 1] = ' ';
        for (Py_ssize_t p = 1; p < size - 1; p++) w[p] = PyUnicode_READ(t->kind, t->data, ws + p - 1);
        if (size <= min_n) { /* a short word counts once, whole */
            uint64_t h = FNV_OFFSET;
            for (Py_ssize_t p = 0; p < size; p++) h = fnv(h, w[p]);
            if (sink->term(sink, finish(h), t, ws, size, 1) < 0) return -1;
        } else if (ordered) {
            for (int n = min_n; n <= max_n; n++) {
                Py_ssize_t len = size <= n ? size : n;
                for (Py_ssize_t s = 0; s + len <= size; s++) {
                    uint64_t h = FNV_OFFSET;
                    for (Py_ssize_t p = s; p < s + len; p++) h = fnv(h, w[p]);
                    if (sink->term(sink, finish(h), t, ws + s, len, 1) < 0) return -1;
                }
                if (size <= n) break;
            }
        } else { /* the same multiset of n-grams: every n-gram of length min_n..min(max_n, size) */
            for (Py_ssize_t s = 0; s + min_n <= size; s++) {
                uint64_t h = FNV_OFFSET;
                for (Py_ssize_t p = s; p < s + min_n - 1; p++) h = fnv(h, w[p]);
                for (Py_ssize_t p = s + min_n - 1; p < size && p < s + max_n; p++) {
                    h = fnv(h, w[p]);
                    if (sink->term(sink, finish(h), t, ws + s, p - s + 1, 1) < 0) return -1;
                }
            }
        }
    }
    return 0;
}

/* -- the magnitude features --------------------------------------------------------------------------- */

#define N_MAGNITUDES 10

/* Case-insensitive match of a unit word as re.IGNORECASE does it (including ſ, ı, İ and the Kelvin sign). */
static inline Py_UCS4 fold(Py_UCS4 c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';
    if (c == 0x131 || c == 0x130) return 'i';
    if (c == 0x212A) return 'k';
    return c;
}

/* Seconds per unit if text[y:e] is one of ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?
 * followed by \b (the unit is then the whole run of word characters from y); 0 if it is not. */
static double unit_seconds(const Text *t, Py_ssize_t y, Py_ssize_t *end) {
    static const struct {
        const char *word;
        double seconds;
    } units[] = {{"ms", 0.001},   {"millisecond", 0.001}, {"milliseconds", 0.001}, {"s", 1.0},
                 {"sec", 1.0},    {"secs", 1.0},          {"second", 1.0},         {"seconds", 1.0},
                 {"m", 60.0},     {"min", 60.0},          {"mins", 60.0},          {"minute", 60.0},
                 {"minutes", 60.0}, {"h", 3600.0},        {"hr", 3600.0},          {"hrs", 3600.0},
                 {"hour", 3600.0}, {"hours", 3600.0}};
    Py_ssize_t e = y;
    while (is_word(ch(t, e))) e++;
    Py_ssize_t len = e - y;
    if (len == 0 || len > 12) return 0.0;
    char w[13];
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = fold(ch(t, y + i));
        if (c > 127) return 0.0;
        w[i] = (char)c;
    }
    w[len] = '\0';
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        if (strcmp(w, units[u].word) == 0) {
            *end = e;
            return units[u].seconds;
        }
    }
    return 0.0;
}

/* `(\d{1,3}(?:\.\d+)?)\s?%` at p: end of the match (the number in [p, *num_end)), or -1. */
static Py_ssize_t match_percent(const Text *t, Py_ssize_t p, Py_ssize_t *num_end) {
    Py_ssize_t run = digit_run(t, p);
    for (Py_ssize_t k = run < 3 ? run : 3; k >= 1; k--) {
        Py_ssize_t x = p + k;
        Py_ssize_t candidates[2] = {-1, x};
        if (ch(t, x) == '.' && is_digit(ch(t, x + 1))) candidates[0] = x + 1 + digit_run(t, x + 1);
        for (int c = 0; c < 2; c++) {
            Py_ssize_t q = candidates[c];
            if (q < 0) continue;
            if (is_space(ch(t, q)) && ch(t, q + 1) == '%') {
                *num_end = q;
                return q + 2;
            }
            if (ch(t, q) == '%') {
                *num_end = q;
                return q + 1;
            }
        }
    }
    return -1;
}

/* `(\d+(?:\.\d+)?)\s?(unit)\b` at p: end of the match, or -1. */
static Py_ssize_t match_duration(const Text *t, Py_ssize_t p, Py_ssize_t *num_end, double *seconds) {
    Py_ssize_t run = digit_run(t, p);
    for (Py_ssize_t k = run; k >= 1; k--) {
        Py_ssize_t x = p + k;
        Py_ssize_t candidates[2] = {-1, x};
        if (ch(t, x) == '.' && is_digit(ch(t, x + 1))) candidates[0] = x + 1 + digit_run(t, x + 1);
        for (int c = 0; c < 2; c++) {
            Py_ssize_t q = candidates[c], end;
            if (q < 0) continue;
            if (is_space(ch(t, q)) && (*seconds = unit_seconds(t, q + 1, &end)) > 0) {
                *num_end = q;
                return end;
            }
            if ((*seconds = unit_seconds(t, q, &end)) > 0) {
                *num_end = q;
                return end;
            }
        }
    }
    return -1;
}

static long small_int(const Text *t, Py_ssize_t start, Py_ssize_t end) {
    long v = 0;
    for (Py_ssize_t i = start; i < end; i++) v = v * 10 + Py_UNICODE_TODECIMAL(ch(t, i));
    return v;
}

/* `\b(\d{1,4})\s?/\s?(\d{1,4})\b` at p: end of the match with both numbers, or -1. */
static Py_ssize_t match_ratio(const Text *t, Py_ssize_t p, long *a, long *b) {
    if (!boundary(t, p)) return -1;
    Py_ssize_t run = digit_run(t, p);
    for (Py_ssize_t k = run < 4 ? run : 4; k >= 1; k--) {
        Py_ssize_t x = p + k;
        for (int s1 = is_space(ch(t, x)); s1 >= 0; s1--) {
            Py_ssize_t y = x + s1;
            if (ch(t, y) != '/') continue;
            for (int s2 = is_space(ch(t, y + 1)); s2 >= 0; s2--) {
                Py_ssize_t w = y + 1 + s2, run2 = digit_run(t, w);
                for (Py_ssize_t k2 = run2 < 4 ? run2 : 4; k2 >= 1; k2--) {
                    if (boundary(t, w + k2)) {
                        *a = small_int(t, p, x);
                        *b = small_int(t, w, w + k2);
                        return w + k2;
                    }
                }
            }
        }
    }
    return -1;
}

/* `\b\d[\d,]*(?:\.\d+)?\b` at p: end of the match, or -1. */
static Py_ssize_t match_number(const Text *t, Py_ssize_t p) {
    if (!boundary(t, p)) return -1;
    Py_ssize_t r = p + 1;
    while (is_digit(ch(t, r)) || ch(t, r) == ',') r++;
    for (Py_ssize_t e = r; e > p; e--) {
        if (ch(t, e) == '.' && is_digit(ch(t, e + 1))) {
            for (Py_ssize_t q = e + 1 + digit_run(t, e + 1); q > e + 1; q--)
                if (boundary(t, q)) return q;
        }
        if (boundary(t, e)) return e;
    }
    return -1;
}

/* The tier callable's answer for the name in `service:(\S+)\s*$`, or for None without one. */
static long service_tier(const Text *t, PyObject *text, PyObject *tier_of) {
    Py_ssize_t end = t->n;
    while (end > 0 && is_space(ch(t, end - 1))) end--;
    Py_ssize_t start = end;
    while (start > 0 && !is_space(ch(t, start - 1))) start--;
    static const char key[] = "service:";
    PyObject *name = NULL;
    for (Py_ssize_t i = start; i + 8 < end; i++) {
        int k = 0;
        while (k < 8 && ch(t, i + k) == (Py_UCS4)key[k]) k++;
        if (k == 8) {
            name = PyUnicode_Substring(text, i + 8, end);
            if (name == NULL) return -1;
            break;
        }
    }
    PyObject *tier = PyObject_CallOneArg(tier_of, name ? name : Py_None);
    Py_XDECREF(name);
    if (tier == NULL) return -1;
    long v = PyLong_AsLong(tier);
    Py_DECREF(tier);
    return v;
}

/* Non-overlapping occurrences of each phrase in `lowered`, as str.count() counts them: one pass over the
 * text, each phrase resuming after its own last match. */
#define MAX_PHRASES 64
static int count_phrases(const Text *low, PyObject *phrases, double *out) {
    Py_ssize_t n_phrases = PyTuple_GET_SIZE(phrases);
    if (n_phrases > MAX_PHRASES) {
        PyErr_SetString(PyExc_ValueError, "too many phrases");
        return -1;
    }
    Text ph[MAX_PHRASES];
    Py_ssize_t next[MAX_PHRASES];
    long count[MAX_PHRASES];
    uint64_t starts_with[129] = {0}; /* phrases by first character; [128]: a non-ASCII first character */
    for (Py_ssize_t k = 0; k < n_phrases; k++) {
        if (text_of(PyTuple_GET_ITEM(phrases, k), &ph[k]) < 0) return -1;
        if (ph[k].n == 0) {
            PyErr_SetString(PyExc_ValueError, "empty phrase");
            return -1;
        }
        next[k] = 0;
        count[k] = 0;
        if (low->kind == PyUnicode_1BYTE_KIND && ph[k].kind == PyUnicode_1BYTE_KIND) {
            /* the common case, one byte per character: libc's substring search */
            const char *at = low->data, *end = (const char *)low->data + low->n;
            while ((at = memmem(at, end - at, ph[k].data, ph[k].n)) != NULL) {
                count[k]++;
                at += ph[k].n;
            }
            continue;
        }
        Py_UCS4 first = PyUnicode_READ(ph[k].kind, ph[k].data, 0);
        starts_with[first < 128 ? first : 128] |= 1ULL << k;
    }
    for (Py_ssize_t i = 0; i < low->n; i++) {
        Py_UCS4 c = PyUnicode_READ(low->kind, low->data, i);
        for (uint64_t m = starts_with[c < 128 ? c : 128]; m; m &= m - 1) {
            int k = __builtin_ctzll(m);
            if (i < next[k] || i + ph[k].n > low->n || c != PyUnicode_READ(ph[k].kind, ph[k].data, 0))
                continue;
            Py_ssize_t j = 1;
            while (j < ph[k].n &&
                   PyUnicode_READ(low->kind, low->data, i + j) == PyUnicode_READ(ph[k].kind, ph[k].data, j))
                j++;
            if (j == ph[k].n) {
                count[k]++;
                next[k] = i + ph[k].n;
            }
        }
    }
    for (Py_ssize_t k = 0; k < n_phrases; k++) out[k] = log1p((double)count[k]);
    return 0;
}

/* What an SRE reads first: how high, how long, how many, how broken, how important; then phrase counts.
 * Writes N_MAGNITUDES + len(phrases) values. */
static int magnitudes(PyObject *text, PyObject *lowered, PyObject *tier_of, PyObject *phrases, double *out) {
    Text t, low;
    if (text_of(text, &t) < 0 || text_of(lowered, &low) < 0) return -1;
    double max_pct = 0.0, max_dur = 0.0, min_ratio = 1.0, largest = 0.0;
    int any_dur = 0, any_ratio = 0, any_number = 0;
    long n_pct = 0;
    /* One pass. Each pattern scans on its own, as re.findall does (a cursor per pattern: the end of its
     * last match), but can only start at the start of a run of digits: inside a run there is no \b for
     * the ratio and number patterns, and the percent and duration patterns, whose digits run greedily to
     * the end of the run, fail at every later start if they fail at the first (percent: the last three). */
    Py_ssize_t pct_at = 0, dur_at = 0, ratio_at = 0, number_at = 0, num_end, lines = 0, words = 0;
    int in_word = 0;
    for (Py_ssize_t p = 0; p < t.n; p++) {
        Py_UCS4 c = PyUnicode_READ(t.kind, t.data, p);
        if (c == '\n') lines++;
        int space = is_space(c);
        if (!space && !in_word) words++;
        in_word = !space;
        if (!is_digit(c) || is_digit(ch(&t, p - 1))) continue;
        Py_ssize_t run_end = p + digit_run(&t, p), e;
        Py_ssize_t last3 = run_end - p > 3 ? run_end - 3 : p;
        if (p >= pct_at && (e = match_percent(&t, last3, &num_end)) >= 0) {
            double v = parse_number(&t, last3, num_end);
            if (v <= 100.0) {
                n_pct++;
                if (v > max_pct) max_pct = v;
            }
            pct_at = e;
        }
        double seconds;
        if (p >= dur_at && (e = match_duration(&t, p, &num_end, &seconds)) >= 0) {
            double v = parse_number(&t, p, num_end) * seconds;
            if (!any_dur || v > max_dur) max_dur = v;
            any_dur = 1;
            dur_at = e;
        }
        long a, b;
        if (p >= ratio_at && (e = match_ratio(&t, p, &a, &b)) >= 0) {
            if (b > 0 && b <= 1000 && a <= b) {
                double r = (double)a / (double)b;
                if (!any_ratio || r < min_ratio) min_ratio = r;
                any_ratio = 1;
            }
            ratio_at = e;
        }
        if (p >= number_at && (e = match_number(&t, p)) >= 0) {
            double v = parse_number(&t, p, e);
            if (!any_number || v > largest) largest = v;
            any_number = 1;
            number_at = e;
        }
    }
    long tier = service_tier(&t, text, tier_of);
    if (tier == -1 && PyErr_Occurred()) return -1;
    out[0] = max_pct / 100.0;
    out[1] = (double)(n_pct < 10 ? n_pct : 10) / 10.0;
    out[2] = log1p(max_dur < 1e7 ? max_dur : 1e7);
    out[3] = min_ratio;
    out[4] = log1p(largest < 1e9 ? largest : 1e9);
    out[5] = tier == 1 ? 1.0 : 0.0;
    out[6] = tier == 3 ? 1.0 : 0.0;
    out[7] = log1p((double)t.n);
    out[8] = log1p((double)lines);
    out[9] = log1p((double)words);
    return count_phrases(&low, phrases, out + N_MAGNITUDES);
}

static int check_phrases(PyObject *phrases) {
    if (!PyTuple_Check(phrases)) {
        PyErr_SetString(PyExc_TypeError, "phrases must be a tuple of str");
        return -1;
    }
    return 0;
}

static PyObject *py_numeric_features(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text, *lowered, *tier_of, *phrases;
    if (!PyArg_ParseTuple(args, "UUOO", &text, &lowered, &tier_of, &phrases) || check_phrases(phrases) < 0)
        return NULL;
    Py_ssize_t n = N_MAGNITUDES + PyTuple_GET_SIZE(phrases);
    double *out = PyMem_Malloc(n * sizeof(double));
    if (out == NULL) return PyErr_NoMemory();
    PyObject *list = NULL;
    if (magnitudes(text, lowered, tier_of, phrases, out) == 0 && (list = PyList_New(n)) != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *f = PyFloat_FromDouble(out[i]);
            if (f == NULL) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, i, f);
        }
    }
    PyMem_Free(out);
    return list;
}

/* -- char_wb as strings, for fitting the vocabulary ------------------------------------------------- */

typedef struct {
    Sink base;
    PyObject *list;
} ListSink;

static int list_term(Sink *s, uint64_t key, const Text *t, Py_ssize_t start, Py_ssize_t len, int pad) {
    (void)key;
    Py_UCS4 buf[64];
    Py_UCS4 *cps = len <= 64 ? buf : PyMem_Malloc(len * sizeof(Py_UCS4));
    if (cps == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* Padded n-grams: text position start + i - 1; the pads fall on whitespace or outside the text. */
    Py_ssize_t shift = pad ? 1 : 0, size = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_ssize_t pos = start + i - shift;
        Py_UCS4 c = ch(t, pos);
        cps[size++] = pad && (pos < 0 || pos >= t->n || is_space(c)) ? ' ' : c;
    }
    PyObject *term = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, cps, size);
    if (cps != buf) PyMem_Free(cps);
    if (term == NULL) return -1;
    int rc = PyList_Append(((ListSink *)s)->list, term);
    Py_DECREF(term);
    return rc;
}

static PyObject *py_char_wb(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *doc;
    int min_n, max_n;
    Text t;
    if (!PyArg_ParseTuple(args, "Uii", &doc, &min_n, &max_n) || text_of(doc, &t) < 0) return NULL;
    if (min_n < 1 || max_n < min_n) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= min_n <= max_n");
        return NULL;
    }
    ListSink sink = {{list_term}, PyList_New(0)};
    if (sink.list == NULL) return NULL;
    Tokens scratch = {0};
    if (char_terms(&t, min_n, max_n, 1, &scratch, &sink.base) < 0) Py_CLEAR(sink.list);
    PyMem_Free(scratch.word);
    return sink.list;
}

/* -- Featurizer: the fitted pipeline's rows and the fused models' raw scores ------------------------ */

enum { WORDS = 0, CHARS = 1 };

typedef struct {
    int kind, min_n, max_n;
    Py_ssize_t source; /* index of this block's (prepared, lowercased) text in a document tuple */
    Table table;
    Py_buffer idf;
    int sublinear;
    double weight;
    Py_ssize_t offset;
} Block;

typedef struct {
    PyObject_HEAD
    Block *blocks;
    Py_ssize_t n_blocks, n_features, width;
    int has_numeric, has_weights;
    Py_buffer mean, scale, weights;
    double numeric_weight;
    Py_ssize_t numeric_offset, numeric_size;
    PyObject *tier_of, *phrases;
    /* scratch, reused: the GIL is held throughout, so calls never overlap */
    uint32_t *counts;
    int32_t *touched;
    Py_ssize_t n_touched;
    uint64_t *keys; /* hashes of the current block's terms */
    Py_ssize_t n_keys, keys_cap;
    Tokens tokens;
    double *magnitudes;
    int64_t *idx;
    double *vals;
    Py_ssize_t row_n, row_cap;
} Featurizer;

typedef struct {
    Sink base;
    Featurizer *f;
} CountSink;

/* Terms are hashed first and looked up after, with the table slots prefetched a few terms ahead: the
 * lookups are cache misses, and this way many are in flight at once. */
static int collect_term(Sink *s, uint64_t key, const Text *t, Py_ssize_t start, Py_ssize_t len, int pad) {
    (void)t, (void)start, (void)len, (void)pad;
    Featurizer *f = ((CountSink *)s)->f;
    if (f->n_keys == f->keys_cap) {
        Py_ssize_t cap = f->keys_cap ? 2 * f->keys_cap : 4096;
        uint64_t *keys = PyMem_Realloc(f->keys, cap * sizeof(uint64_t));
        if (keys == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        f->keys = keys;
        f->keys_cap = cap;
    }
    f->keys[f->n_keys++] = key;
    return 0;
}

#define AHEAD 16

static void count_keys(Featurizer *f, const Block *blk) {
    const Table *tb = &blk->table;
    for (Py_ssize_t i = 0; i < f->n_keys; i++) {
        if (i + AHEAD < f->n_keys) __builtin_prefetch(&tb->slots[f->keys[i + AHEAD] & tb->mask]);
        int64_t col = lookup(tb, f->keys[i]);
        if (col >= 0) {
            Py_ssize_t g = blk->offset + col;
            if (f->counts[g]++ == 0) f->touched[f->n_touched++] = (int32_t)g;
        }
    }
}

static int row_push(Featurizer *f, int64_t col, double v) {
    if (f->row_n == f->row_cap) {
        Py_ssize_t cap = f->row_cap ? 2 * f->row_cap : 1024;
        int64_t *idx = PyMem_Realloc(f->idx, cap * sizeof(int64_t));
        if (idx == NULL) return -1;
        f->idx = idx;
        double *vals = PyMem_Realloc(f->vals, cap * sizeof(double));
        if (vals == NULL) return -1;
        f->vals = vals;
        f->row_cap = cap;
    }
    f->idx[f->row_n] = col;
    f->vals[f->row_n] = v;
    f->row_n++;
    return 0;
}

/* The feature row of one document tuple (text, lowered text, one prepared text per block) into idx/vals. */
static int featurize(Featurizer *f, PyObject *doc) {
    if (!PyTuple_Check(doc)) {
        PyErr_SetString(PyExc_TypeError, "a document is a tuple of str");
        return -1;
    }
    f->row_n = 0;
    CountSink sink = {{collect_term}, f};
    for (Py_ssize_t b = 0; b < f->n_blocks; b++) {
        const Block *blk = &f->blocks[b];
        if (blk->source >= PyTuple_GET_SIZE(doc)) {
            PyErr_SetString(PyExc_ValueError, "document tuple too short");
            return -1;
        }
        Text t;
        if (text_of(PyTuple_GET_ITEM(doc, blk->source), &t) < 0) return -1;
        f->n_touched = 0;
        f->n_keys = 0;
        int rc = blk->kind == WORDS ? word_terms(&t, blk->min_n, blk->max_n, &f->tokens, &sink.base)
                                    : char_terms(&t, blk->min_n, blk->max_n, 0, &f->tokens, &sink.base);
        if (rc == 0) count_keys(f, blk);
        const double *idf = blk->idf.buf;
        double ss = 0.0;
        Py_ssize_t first = f->row_n;
        for (Py_ssize_t i = 0; rc == 0 && i < f->n_touched; i++) {
            int32_t g = f->touched[i];
            double tf = (double)f->counts[g];
            double v = (blk->sublinear ? log(tf) + 1.0 : tf) * idf[g - blk->offset];
            ss += v * v;
            if (row_push(f, g, v) < 0) {
                PyErr_NoMemory();
                rc = -1;
            }
        }
        for (Py_ssize_t i = 0; i < f->n_touched; i++) f->counts[f->touched[i]] = 0;
        if (rc < 0) return -1;
        if (ss > 0.0) {
            double scale = blk->weight / sqrt(ss);
            for (Py_ssize_t i = first; i < f->row_n; i++) f->vals[i] *= scale;
        }
    }
    if (f->has_numeric) {
        if (PyTuple_GET_SIZE(doc) < 2) {
            PyErr_SetString(PyExc_ValueError, "document tuple too short");
            return -1;
        }
        if (magnitudes(PyTuple_GET_ITEM(doc, 0), PyTuple_GET_ITEM(doc, 1), f->tier_of, f->phrases,
                       f->magnitudes) < 0)
            return -1;
        const double *mean = f->mean.buf, *scale = f->scale.buf;
        for (Py_ssize_t j = 0; j < f->numeric_size; j++) {
            double v = (f->magnitudes[j] - mean[j]) / scale[j] * f->numeric_weight;
            if (v != 0.0 && row_push(f, f->numeric_offset + j, v) < 0) {
                PyErr_NoMemory();
                return -1;
            }
        }
    }
    return 0;
}

/* raw[k] = sum over the row of value * weights[col, k]: every model's decision function at once. */
static void raw_scores(const Featurizer *f, double *raw) {
    const double *w = f->weights.buf;
    Py_ssize_t width = f->width;
    memset(raw, 0, width * sizeof(double));
    for (Py_ssize_t i = 0; i < f->row_n; i++) {
        if (i + AHEAD < f->row_n) {
            const char *ahead = (const char *)(w + f->idx[i + AHEAD] * width);
            for (Py_ssize_t b = 0; b < width * (Py_ssize_t)sizeof(double); b += 64) __builtin_prefetch(ahead + b);
        }
        const double *row = w + f->idx[i] * width;
        double v = f->vals[i];
        for (Py_ssize_t k = 0; k < width; k++) raw[k] += v * row[k];
    }
}

static PyObject *Featurizer_row(Featurizer *f, PyObject *doc) {
    if (featurize(f, doc) < 0) return NULL;
    PyObject *raw = PyBytes_FromStringAndSize(NULL, f->width * sizeof(double));
    if (raw == NULL) return NULL;
    if (f->has_weights) raw_scores(f, (double *)PyBytes_AS_STRING(raw));
    return Py_BuildValue("(y#y#N)", (const char *)f->idx, f->row_n * (Py_ssize_t)sizeof(int64_t),
                         (const char *)f->vals, f->row_n * (Py_ssize_t)sizeof(double), raw);
}

static PyObject *Featurizer_scores(Featurizer *f, PyObject *docs) {
    if (!f->has_weights) {
        PyErr_SetString(PyExc_ValueError, "this featurizer has no weights");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(docs, "documents must be a sequence");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * f->width * sizeof(double));
    if (out != NULL) {
        double *raw = (double *)PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (featurize(f, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
                Py_CLEAR(out);
                break;
            }
            raw_scores(f, raw + i * f->width);
        }
    }
    Py_DECREF(seq);
    return out;
}

/* Many rows as CSR arrays: (indptr int64, indices int32, data float64) as bytes. */
static PyObject *Featurizer_csr(Featurizer *f, PyObject *docs) {
    PyObject *seq = PySequence_Fast(docs, "documents must be a sequence");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), nnz = 0, cap = 1 << 16;
    int64_t *indptr = PyMem_Malloc((n + 1) * sizeof(int64_t));
    int32_t *indices = PyMem_Malloc(cap * sizeof(int32_t));
    double *data = PyMem_Malloc(cap * sizeof(double));
    PyObject *result = NULL;
    if (indptr == NULL || indices == NULL || data == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    indptr[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (featurize(f, PySequence_Fast_GET_ITEM(seq, i)) < 0) goto done;
        if (nnz + f->row_n > cap) {
            while (nnz + f->row_n > cap) cap *= 2;
            int32_t *ind2 = PyMem_Realloc(indices, cap * sizeof(int32_t));
            if (ind2 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            indices = ind2;
            double *data2 = PyMem_Realloc(data, cap * sizeof(double));
            if (data2 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            data = data2;
        }
        for (Py_ssize_t j = 0; j < f->row_n; j++) {
            indices[nnz + j] = (int32_t)f->idx[j];
            data[nnz + j] = f->vals[j];
        }
        nnz += f->row_n;
        indptr[i + 1] = nnz;
    }
    result = Py_BuildValue("(y#y#y#)", (const char *)indptr, (n + 1) * (Py_ssize_t)sizeof(int64_t),
                           (const char *)indices, nnz * (Py_ssize_t)sizeof(int32_t), (const char *)data,
                           nnz * (Py_ssize_t)sizeof(double));
done:
    PyMem_Free(indptr);
    PyMem_Free(indices);
    PyMem_Free(data);
    Py_DECREF(seq);
    return result;
}

static int get_doubles(PyObject *obj, Py_buffer *view, Py_ssize_t count, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 8 || view->format == NULL || strcmp(view->format, "d") != 0 ||
        view->len != count * 8) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s must be %zd contiguous float64 values", what, count);
        return -1;
    }
    return 0;
}

static void Featurizer_dealloc(Featurizer *f) {
    for (Py_ssize_t b = 0; b < f->n_blocks; b++) {
        table_free(&f->blocks[b].table);
        if (f->blocks[b].idf.obj) PyBuffer_Release(&f->blocks[b].idf);
    }
    PyMem_Free(f->blocks);
    if (f->mean.obj) PyBuffer_Release(&f->mean);
    if (f->scale.obj) PyBuffer_Release(&f->scale);
    if (f->weights.obj) PyBuffer_Release(&f->weights);
    Py_XDECREF(f->tier_of);
    Py_XDECREF(f->phrases);
    PyMem_Free(f->counts);
    PyMem_Free(f->touched);
    PyMem_Free(f->keys);
    PyMem_Free(f->tokens.start);
    PyMem_Free(f->tokens.len);
    PyMem_Free(f->tokens.word);
    PyMem_Free(f->magnitudes);
    PyMem_Free(f->idx);
    PyMem_Free(f->vals);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

/* Featurizer(blocks, numeric, weights, width, n_features, tier_of, phrases)
 *   blocks:  [(kind "words"|"chars", min_n, max_n, source, terms, idf, sublinear, weight, offset), ...]
 *   numeric: None or (mean, scale, weight, offset)
 *   weights: None or float64 (n_features, width), C order: the fused models' coefficients */
static int Featurizer_init(Featurizer *f, PyObject *args, PyObject *kwds) {
    PyObject *blocks, *numeric, *weights, *tier_of, *phrases;
    Py_ssize_t width, n_features;
    static char *kwlist[] = {"blocks", "numeric", "weights", "width", "n_features", "tier_of", "phrases", NULL};
    if (f->blocks != NULL || f->counts != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Featurizer is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOnnOO!", kwlist, &PyList_Type, &blocks, &numeric,
                                     &weights, &width, &n_features, &tier_of, &PyTuple_Type, &phrases))
        return -1;
    if (n_features <= 0 || n_features >= INT32_MAX || width < 0) {
        PyErr_SetString(PyExc_ValueError, "bad feature count or width");
        return -1;
    }
    f->n_features = n_features;
    f->width = width;
    Py_INCREF(tier_of);
    f->tier_of = tier_of;
    Py_INCREF(phrases);
    f->phrases = phrases;
    f->n_blocks = PyList_GET_SIZE(blocks);
    f->blocks = PyMem_Calloc(f->n_blocks ? f->n_blocks : 1, sizeof(Block));
    f->counts = PyMem_Calloc(n_features, sizeof(uint32_t));
    f->touched = PyMem_Malloc(n_features * sizeof(int32_t));
    f->magnitudes = PyMem_Malloc((N_MAGNITUDES + PyTuple_GET_SIZE(phrases)) * sizeof(double));
    if (f->blocks == NULL || f->counts == NULL || f->touched == NULL || f->magnitudes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t b = 0; b < f->n_blocks; b++) {
        Block *blk = &f->blocks[b];
        const char *kind;
        PyObject *terms, *idf;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(blocks, b), "siinOOpdn", &kind, &blk->min_n, &blk->max_n,
                              &blk->source, &terms, &idf, &blk->sublinear, &blk->weight, &blk->offset))
            return -1;
        if (strcmp(kind, "words") == 0) {
            blk->kind = WORDS;
        } else if (strcmp(kind, "chars") == 0) {
            blk->kind = CHARS;
        } else {
            PyErr_Format(PyExc_ValueError, "unknown block kind %s", kind);
            return -1;
        }
        if (blk->min_n < 1 || blk->max_n < blk->min_n || blk->source < 0) {
            PyErr_SetString(PyExc_ValueError, "bad n-gram range or source");
            return -1;
        }
        Py_ssize_t size = PyObject_Length(terms);
        if (size < 0) return -1;
        if (blk->offset < 0 || blk->offset + size > n_features) {
            PyErr_SetString(PyExc_ValueError, "block outside the feature range");
            return -1;
        }
        if (get_doubles(idf, &blk->idf, size, "idf") < 0 || table_build(&blk->table, terms) < 0) return -1;
    }
    if (numeric != Py_None) {
        PyObject *mean, *scale;
        if (!PyArg_ParseTuple(numeric, "OOdn", &mean, &scale, &f->numeric_weight, &f->numeric_offset))
            return -1;
        f->numeric_size = N_MAGNITUDES + PyTuple_GET_SIZE(phrases);
        if (f->numeric_offset < 0 || f->numeric_offset + f->numeric_size > n_features) {
            PyErr_SetString(PyExc_ValueError, "numeric block outside the feature range");
            return -1;
        }
        if (get_doubles(mean, &f->mean, f->numeric_size, "mean") < 0 ||
            get_doubles(scale, &f->scale, f->numeric_size, "scale") < 0)
            return -1;
        f->has_numeric = 1;
    }
    if (weights != Py_None) {
        if (get_doubles(weights, &f->weights, n_features * width, "weights") < 0) return -1;
        f->has_weights = 1;
    }
    return 0;
}

static PyMethodDef Featurizer_methods[] = {
    {"row", (PyCFunction)Featurizer_row, METH_O,
     "row(doc) -> (indices int64, values float64, raw scores float64) as bytes"},
    {"scores", (PyCFunction)Featurizer_scores, METH_O, "scores(docs) -> raw scores (n x width float64) as bytes"},
    {"csr", (PyCFunction)Featurizer_csr, METH_O,
     "csr(docs) -> (indptr int64, indices int32, data float64) as bytes"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FeaturizerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine._native.Featurizer",
    .tp_basicsize = sizeof(Featurizer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Feature rows and fused raw scores of a fitted feature pipeline.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Featurizer_init,
    .tp_dealloc = (destructor)Featurizer_dealloc,
    .tp_methods = Featurizer_methods,
};

static PyMethodDef module_methods[] = {
    {"numeric_features", py_numeric_features, METH_VARARGS,
     "numeric_features(text, lowered, tier_of, phrases) -> list[float]"},
    {"char_wb", py_char_wb, METH_VARARGS, "char_wb(lowered, min_n, max_n) -> list[str], as scikit-learn's"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "engine._native",
                                    "The serving hot path: feature rows and fused scores.", -1,
                                    module_methods};

PyMODINIT_FUNC PyInit__native(void) {
    init_classes();
    if (PyType_Ready(&FeaturizerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&FeaturizerType);
    if (PyModule_AddObject(m, "Featurizer", (PyObject *)&FeaturizerType) < 0) {
        Py_DECREF(&FeaturizerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
