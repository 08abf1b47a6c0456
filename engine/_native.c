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
#include <locale.h>
#include <math.h>
#include <pthread.h>
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

static locale_t c_locale; /* numbers are read with '.' whatever the process's locale */

/* float() of text[start:end] with commas dropped (digits may be any Unicode decimal, as float() allows).
 * strtod rounds correctly, as float() does; overflow gives inf, as float() does. Needs no GIL. */
static double parse_number(const Text *t, Py_ssize_t start, Py_ssize_t end) {
    char small[64];
    char *buf = small;
    if (end - start + 1 > (Py_ssize_t)sizeof small) {
        buf = PyMem_RawMalloc(end - start + 1);
        if (buf == NULL) return 0.0;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = ch(t, i);
        if (c == ',') continue;
        buf[k++] = c == '.' ? '.' : (char)('0' + Py_UNICODE_TODECIMAL(c));
    }
    buf[k] = '\0';
    double v = strtod_l(buf, NULL, c_locale);
    if (buf != small) PyMem_RawFree(buf);
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
/* They need no GIL; on running out of memory they return -1 and leave raising to a caller with the GIL. */

typedef struct Sink Sink;
struct Sink {
    int (*term)(Sink *, uint64_t key, const Text *t, Py_ssize_t start, Py_ssize_t len, int padded);
};

/* Scratch reused between calls: the word analyzer's token spans, the character analyzer's padded word. */
typedef struct {
    Py_ssize_t *start, *len;
    uint64_t *key; /* the character analyzer's word keys */
    Py_ssize_t n, cap;
    Py_UCS4 *word;
    Py_ssize_t word_cap;
} Tokens;

static int tokens_push(Tokens *tk, Py_ssize_t start, Py_ssize_t len, uint64_t key) {
    if (tk->n == tk->cap) {
        Py_ssize_t cap = tk->cap ? 2 * tk->cap : 256;
        Py_ssize_t *s = PyMem_RawRealloc(tk->start, cap * sizeof(Py_ssize_t));
        if (s == NULL) return -1;
        tk->start = s;
        Py_ssize_t *l = PyMem_RawRealloc(tk->len, cap * sizeof(Py_ssize_t));
        if (l == NULL) return -1;
        tk->len = l;
        uint64_t *k = PyMem_RawRealloc(tk->key, cap * sizeof(uint64_t));
        if (k == NULL) return -1;
        tk->key = k;
        tk->cap = cap;
    }
    tk->start[tk->n] = start;
    tk->len[tk->n] = len;
    tk->key[tk->n] = key;
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
        if (j - i >= 2 && tokens_push(tk, i, j - i, 0) < 0) return -1;
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
            Py_UCS4 *w = PyMem_RawRealloc(tk->word, size * sizeof(Py_UCS4));
            if (w == NULL) return -1;
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
    Py_UCS4 first = fold(ch(t, y));
    if (first != 'm' && first != 's' && first != 'h') return 0.0; /* most numbers are followed by no unit */
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

/* The tier callable's answer for the name in `service:(\S+)\s*$`, or for None without one (needs the GIL). */
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

/* The phrases counted in the lowered text, read once (a tuple of non-empty str, at most 64). */
#define MAX_PHRASES 64
typedef struct {
    Text items[MAX_PHRASES];
    Py_ssize_t n;
} Phrases;

static int phrases_of(PyObject *tuple, Phrases *ph) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) > MAX_PHRASES) {
        PyErr_SetString(PyExc_ValueError, "phrases must be a tuple of at most 64 str");
        return -1;
    }
    ph->n = PyTuple_GET_SIZE(tuple);
    for (Py_ssize_t k = 0; k < ph->n; k++) {
        if (text_of(PyTuple_GET_ITEM(tuple, k), &ph->items[k]) < 0) return -1;
        if (ph->items[k].n == 0) {
            PyErr_SetString(PyExc_ValueError, "empty phrase");
            return -1;
        }
    }
    return 0;
}

/* Non-overlapping occurrences of each phrase in `lowered`, as str.count() counts them. */
static void count_phrases(const Text *low, const Phrases *phrases, double *out) {
    Py_ssize_t next[MAX_PHRASES];
    long count[MAX_PHRASES];
    uint64_t starts_with[129] = {0}; /* phrases by first character; [128]: a non-ASCII first character */
    for (Py_ssize_t k = 0; k < phrases->n; k++) {
        const Text *ph = &phrases->items[k];
        next[k] = 0;
        count[k] = 0;
        if (low->kind == PyUnicode_1BYTE_KIND && ph->kind == PyUnicode_1BYTE_KIND) {
            /* the common case, one byte per character: libc's substring search */
            const char *at = low->data, *end = (const char *)low->data + low->n;
            while ((at = memmem(at, end - at, ph->data, ph->n)) != NULL) {
                count[k]++;
                at += ph->n;
            }
            continue;
        }
        Py_UCS4 first = PyUnicode_READ(ph->kind, ph->data, 0);
        starts_with[first < 128 ? first : 128] |= 1ULL << k;
    }
    /* otherwise one pass over the text, each phrase resuming after its own last match */
    for (Py_ssize_t i = 0; i < low->n; i++) {
        Py_UCS4 c = PyUnicode_READ(low->kind, low->data, i);
        for (uint64_t m = starts_with[c < 128 ? c : 128]; m; m &= m - 1) {
            int k = __builtin_ctzll(m);
            const Text *ph = &phrases->items[k];
            if (i < next[k] || i + ph->n > low->n || c != PyUnicode_READ(ph->kind, ph->data, 0)) continue;
            Py_ssize_t j = 1;
            while (j < ph->n &&
                   PyUnicode_READ(low->kind, low->data, i + j) == PyUnicode_READ(ph->kind, ph->data, j))
                j++;
            if (j == ph->n) {
                count[k]++;
                next[k] = i + ph->n;
            }
        }
    }
    for (Py_ssize_t k = 0; k < phrases->n; k++) out[k] = log1p((double)count[k]);
}

/* Rules 2 and later: a number glued to a word ("k8s", "rate5m") names something, unless the word is a
 * unit of a compound duration ("6h43m"). Only called at the start of a run of digits. */
static int glued(const Text *t, Py_ssize_t p) {
    Py_UCS4 before = ch(t, p - 1);
    return is_word(before) && !is_digit(before) && !is_digit(ch(t, p - 2));
}

/* Rules 2 and later: "500s", "429s" are HTTP responses, not seconds (three digits from 400, then "s"). */
static int status_codes(const Text *t, Py_ssize_t p, Py_ssize_t num_end, Py_ssize_t end) {
    Py_UCS4 first = ch(t, p);
    return num_end == p + 3 && digit_run(t, p) == 3 && (first == '4' || first == '5') && end == num_end + 1 &&
           fold(ch(t, num_end)) == 's';
}

/* What an SRE reads first: how high, how long, how many, how broken, how important; then phrase counts.
 * Writes N_MAGNITUDES + phrases->n values. ``rules``: NUMBER_RULES of the pipeline (1: as first shipped).
 * Needs no GIL (the service's tier is looked up before). */
static void magnitudes(const Text *t, const Text *low, long tier, const Phrases *phrases, int rules,
                       double *out) {
    double max_pct = 0.0, max_dur = 0.0, min_ratio = 1.0, largest = 0.0;
    int any_dur = 0, any_ratio = 0, any_number = 0;
    long n_pct = 0;
    /* One pass. Each pattern scans on its own, as re.findall does (a cursor per pattern: the end of its
     * last match), but can only start at the start of a run of digits: inside a run there is no \b for
     * the ratio and number patterns, and the percent and duration patterns, whose digits run greedily to
     * the end of the run, fail at every later start if they fail at the first (percent: the last three). */
    Py_ssize_t pct_at = 0, dur_at = 0, ratio_at = 0, number_at = 0, num_end, lines = 0, words = 0;
    int in_word = 0;
    for (Py_ssize_t p = 0; p < t->n; p++) {
        Py_UCS4 c = PyUnicode_READ(t->kind, t->data, p);
        if (c == '\n') lines++;
        int space = is_space(c);
        if (!space && !in_word) words++;
        in_word = !space;
        if (!is_digit(c) || is_digit(ch(t, p - 1))) continue;
        Py_ssize_t run_end = p + digit_run(t, p), e;
        Py_ssize_t last3 = run_end - p > 3 ? run_end - 3 : p;
        if (p >= pct_at && (e = match_percent(t, last3, &num_end)) >= 0) {
            double v = parse_number(t, last3, num_end);
            if (v <= 100.0) {
                n_pct++;
                if (v > max_pct) max_pct = v;
            }
            pct_at = e;
        }
        double seconds;
        if (p >= dur_at && !(rules >= 2 && glued(t, p)) && (e = match_duration(t, p, &num_end, &seconds)) >= 0 &&
            !(rules >= 2 && status_codes(t, p, num_end, e))) {
            double v = parse_number(t, p, num_end) * seconds;
            if (!any_dur || v > max_dur) max_dur = v;
            any_dur = 1;
            dur_at = e;
        }
        long a, b;
        if (p >= ratio_at && (e = match_ratio(t, p, &a, &b)) >= 0) {
            if (b > 0 && b <= 1000 && a <= b) {
                double r = (double)a / (double)b;
                if (!any_ratio || r < min_ratio) min_ratio = r;
                any_ratio = 1;
            }
            ratio_at = e;
        }
        if (p >= number_at && (e = match_number(t, p)) >= 0) {
            double v = parse_number(t, p, e);
            if (!any_number || v > largest) largest = v;
            any_number = 1;
            number_at = e;
        }
    }
    out[0] = max_pct / 100.0;
    out[1] = (double)(n_pct < 10 ? n_pct : 10) / 10.0;
    out[2] = log1p(max_dur < 1e7 ? max_dur : 1e7);
    out[3] = min_ratio;
    out[4] = log1p(largest < 1e9 ? largest : 1e9);
    out[5] = tier == 1 ? 1.0 : 0.0;
    out[6] = tier == 3 ? 1.0 : 0.0;
    out[7] = log1p((double)t->n);
    out[8] = log1p((double)lines);
    out[9] = log1p((double)words);
    count_phrases(low, phrases, out + N_MAGNITUDES);
}

/* The rules a pipeline reads numbers by: 1 (as first shipped) or 2 (glued numbers and HTTP status codes
 * are no durations). */
static int number_rules(int rules) {
    if (rules == 1 || rules == 2) return 0;
    PyErr_SetString(PyExc_ValueError, "number rules must be 1 or 2");
    return -1;
}

static PyObject *py_numeric_features(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text, *lowered, *tier_of, *phrase_tuple;
    Text t, low;
    Phrases phrases;
    int rules = 1;
    if (!PyArg_ParseTuple(args, "UUOO|i", &text, &lowered, &tier_of, &phrase_tuple, &rules) ||
        number_rules(rules) < 0 || text_of(text, &t) < 0 || text_of(lowered, &low) < 0 ||
        phrases_of(phrase_tuple, &phrases) < 0)
        return NULL;
    long tier = service_tier(&t, text, tier_of);
    if (tier == -1 && PyErr_Occurred()) return NULL;
    double out[N_MAGNITUDES + MAX_PHRASES];
    magnitudes(&t, &low, tier, &phrases, rules, out);
    Py_ssize_t n = N_MAGNITUDES + phrases.n;
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *f = PyFloat_FromDouble(out[i]);
        if (f == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, f);
    }
    return list;
}

/* -- char_wb as strings, for fitting the vocabulary ------------------------------------------------- */

typedef struct {
    Sink base;
    PyObject *list;
} ListSink;

static int list_term(Sink *s, uint64_t key, const Text *t, Py_ssize_t start, Py_ssize_t len, int pad) {
    (void)key;
    Py_UCS4 small[64];
    Py_UCS4 *cps = len <= 64 ? small : PyMem_Malloc(len * sizeof(Py_UCS4));
    if (cps == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* Padded n-grams: text position start + i - 1; the pads fall on whitespace or outside the text. */
    Py_ssize_t shift = pad ? 1 : 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_ssize_t pos = start + i - shift;
        Py_UCS4 c = ch(t, pos);
        cps[i] = pad && (pos < 0 || pos >= t->n || is_space(c)) ? ' ' : c;
    }
    PyObject *term = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, cps, len);
    if (cps != small) PyMem_Free(cps);
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
    if (char_terms(&t, min_n, max_n, 1, &scratch, &sink.base) < 0) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        Py_CLEAR(sink.list);
    }
    PyMem_RawFree(scratch.word);
    return sink.list;
}

/* -- CamelCase identifiers as words (engine.features.split_identifiers) ------------------------------ */

static inline int is_upper(Py_UCS4 c) { return c >= 'A' && c <= 'Z'; }
static inline int is_lower(Py_UCS4 c) { return c >= 'a' && c <= 'z'; }
static inline int is_ascii_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }

/* A space goes before position i when a lower-case letter or digit precedes an upper-case one, or when an
 * upper-case letter starts a capitalised word right after another ("MSSQLHigh" -> "MSSQL High"). */
static inline int camel_boundary(int kind, const void *data, Py_ssize_t n, Py_ssize_t i) {
    Py_UCS4 prev = PyUnicode_READ(kind, data, i - 1), c = PyUnicode_READ(kind, data, i);
    if (!is_upper(c)) return 0;
    if (is_lower(prev) || is_ascii_digit(prev)) return 1;
    return is_upper(prev) && i + 1 < n && is_lower(PyUnicode_READ(kind, data, i + 1));
}

static PyObject *py_split_identifiers(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "split_identifiers() takes a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), extra = 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = 1; i < n; i++) extra += camel_boundary(kind, data, n, i);
    if (extra == 0) return Py_NewRef(text);
    PyObject *out = PyUnicode_New(n + extra, PyUnicode_MAX_CHAR_VALUE(text));
    if (out == NULL) return NULL;
    int out_kind = PyUnicode_KIND(out);
    void *out_data = PyUnicode_DATA(out);
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && camel_boundary(kind, data, n, i)) PyUnicode_WRITE(out_kind, out_data, j++, ' ');
        PyUnicode_WRITE(out_kind, out_data, j++, PyUnicode_READ(kind, data, i));
    }
    return out;
}

/* -- Featurizer: the fitted pipeline's rows and the fused models' raw scores ------------------------ */

enum { WORDS = 0, CHARS = 1 };

typedef struct {
    int kind, min_n, max_n;
    int lead_words;    /* > 0: only the first this many whitespace-separated words (the title block) */
    Py_ssize_t source; /* index of this block's (prepared, lowercased) text in a document tuple */
    Table table;
    Py_buffer idf;
    int sublinear;
    double weight;
    Py_ssize_t offset;
} Block;

/* One thread's scratch: feature counts, the current block's term hashes, the row being built. */
typedef struct {
    uint32_t *counts;
    int32_t *touched;
    Py_ssize_t n_touched;
    uint64_t *keys;
    Py_ssize_t n_keys, keys_cap;
    Tokens tokens;
    int64_t *idx;
    double *vals;
    Py_ssize_t row_n, row_cap;
    /* Alerts repeat their words: the vocabulary columns of each word's character n-grams, remembered. */
    struct WordSlot {
        uint64_t key;
        int32_t start, len; /* a slice of `pool`; len -1: empty slot */
    } *words;
    int32_t *pool;
    Py_ssize_t n_words, pool_n;
    Tokens words_seen; /* the current text's words */
} Work;

#define WORD_SLOTS (1 << 15) /* at most half of them used */
#define POOL_SIZE (1 << 20)

#define MAX_THREADS 16

typedef struct {
    PyObject_HEAD
    Block *blocks;
    Py_ssize_t n_blocks, n_features, width, n_sources;
    int has_numeric, has_weights, weights_f32, number_rules;
    Py_buffer mean, scale, weights;
    double numeric_weight;
    Py_ssize_t numeric_offset, numeric_size;
    PyObject *tier_of, *phrase_tuple;
    Phrases phrases;
    Work work; /* for calls made holding the GIL, which never overlap */
    /* Batch threads' scratch, kept with the word memory each built: the next batch's words are mostly
     * the same ones, and a cold memory costs a tenth more per text. */
    pthread_mutex_t spare_lock;
    int spare_lock_ready, n_spare;
    Work *spare[MAX_THREADS];
} Featurizer;

static void forget_words(Work *w) {
    for (Py_ssize_t i = 0; i < WORD_SLOTS; i++) w->words[i].len = -1;
    w->n_words = 0;
    w->pool_n = 0;
}

static int work_init(Work *w, Py_ssize_t n_features) {
    memset(w, 0, sizeof *w);
    w->counts = PyMem_RawCalloc(n_features, sizeof(uint32_t));
    w->touched = PyMem_RawMalloc(n_features * sizeof(int32_t));
    w->words = PyMem_RawMalloc(WORD_SLOTS * sizeof(struct WordSlot));
    w->pool = PyMem_RawMalloc(POOL_SIZE * sizeof(int32_t));
    if (!(w->counts && w->touched && w->words && w->pool)) return -1;
    forget_words(w);
    return 0;
}

static void work_free(Work *w) {
    PyMem_RawFree(w->words);
    PyMem_RawFree(w->pool);
    PyMem_RawFree(w->counts);
    PyMem_RawFree(w->touched);
    PyMem_RawFree(w->keys);
    PyMem_RawFree(w->tokens.start);
    PyMem_RawFree(w->tokens.len);
    PyMem_RawFree(w->tokens.word);
    PyMem_RawFree(w->tokens.key);
    PyMem_RawFree(w->words_seen.start);
    PyMem_RawFree(w->words_seen.len);
    PyMem_RawFree(w->words_seen.key);
    PyMem_RawFree(w->words_seen.word);
    PyMem_RawFree(w->idx);
    PyMem_RawFree(w->vals);
    memset(w, 0, sizeof *w);
}

typedef struct {
    Sink base;
    Work *w;
} CountSink;

/* Terms are hashed first and looked up after, with the table slots prefetched a few terms ahead: the
 * lookups are cache misses, and this way many are in flight at once. */
static int collect_term(Sink *s, uint64_t key, const Text *t, Py_ssize_t start, Py_ssize_t len, int pad) {
    (void)t, (void)start, (void)len, (void)pad;
    Work *w = ((CountSink *)s)->w;
    if (w->n_keys == w->keys_cap) {
        Py_ssize_t cap = w->keys_cap ? 2 * w->keys_cap : 4096;
        uint64_t *keys = PyMem_RawRealloc(w->keys, cap * sizeof(uint64_t));
        if (keys == NULL) return -1;
        w->keys = keys;
        w->keys_cap = cap;
    }
    w->keys[w->n_keys++] = key;
    return 0;
}

#define AHEAD 16

static void count_keys(Work *w, const Block *blk) {
    const Table *tb = &blk->table;
    for (Py_ssize_t i = 0; i < w->n_keys; i++) {
        if (i + AHEAD < w->n_keys) __builtin_prefetch(&tb->slots[w->keys[i + AHEAD] & tb->mask]);
        int64_t col = lookup(tb, w->keys[i]);
        if (col >= 0) {
            Py_ssize_t g = blk->offset + col;
            if (w->counts[g]++ == 0) w->touched[w->n_touched++] = (int32_t)g;
        }
    }
}

static inline void count_col(Work *w, Py_ssize_t g) {
    if (w->counts[g]++ == 0) w->touched[w->n_touched++] = (int32_t)g;
}

/* The character n-gram counts of a block, a word at a time: a word seen before adds its remembered
 * columns; a new one is cut into n-grams (as char_terms does), looked up and remembered. */
static int char_counts(Work *w, const Block *blk, Py_ssize_t block_no, const Text *t) {
    /* First the words and their keys, each word's memory slot prefetched; then the counting. */
    Tokens *words = &w->words_seen;
    words->n = 0;
    Py_ssize_t i = 0;
    while (i < t->n) {
        if (is_space(PyUnicode_READ(t->kind, t->data, i))) {
            i++;
            continue;
        }
        Py_ssize_t ws = i;
        uint64_t h = fnv(FNV_OFFSET, ' ');
        while (i < t->n) {
            Py_UCS4 c = PyUnicode_READ(t->kind, t->data, i);
            if (is_space(c)) break;
            h = fnv(h, c);
            i++;
        }
        uint64_t key = finish(fnv(h, ' ') ^ (uint64_t)block_no);
        __builtin_prefetch(&w->words[key & (WORD_SLOTS - 1)]);
        if (tokens_push(words, ws, i - ws, key) < 0) return -1;
    }
    for (Py_ssize_t k = 0; k < words->n; k++) {
        uint64_t key = words->key[k];
        uint64_t slot = key & (WORD_SLOTS - 1);
        while (w->words[slot].len >= 0 && w->words[slot].key != key) slot = (slot + 1) & (WORD_SLOTS - 1);
        if (w->words[slot].len >= 0) {
            const int32_t *cols = w->pool + w->words[slot].start;
            for (int32_t c = 0; c < w->words[slot].len; c++) count_col(w, blk->offset + cols[c]);
            continue;
        }
        Text word = {t->kind, (const char *)t->data + words->start[k] * t->kind, words->len[k]};
        w->n_keys = 0;
        CountSink sink = {{collect_term}, w};
        if (char_terms(&word, blk->min_n, blk->max_n, 0, &w->tokens, &sink.base) < 0) return -1;
        if (w->n_words >= WORD_SLOTS / 2 || w->pool_n + w->n_keys > POOL_SIZE) {
            forget_words(w); /* full: start over */
            slot = key & (WORD_SLOTS - 1);
        }
        int remember = w->pool_n + w->n_keys <= POOL_SIZE;
        int32_t start = (int32_t)w->pool_n;
        for (Py_ssize_t n = 0; n < w->n_keys; n++) {
            int64_t col = lookup(&blk->table, w->keys[n]);
            if (col < 0) continue;
            count_col(w, blk->offset + col);
            if (remember) w->pool[w->pool_n++] = (int32_t)col;
        }
        if (remember) {
            w->words[slot] = (struct WordSlot){key, start, (int32_t)(w->pool_n - start)};
            w->n_words++;
        }
    }
    return 0;
}

static int row_push(Work *w, int64_t col, double v) {
    if (w->row_n == w->row_cap) {
        Py_ssize_t cap = w->row_cap ? 2 * w->row_cap : 1024;
        int64_t *idx = PyMem_RawRealloc(w->idx, cap * sizeof(int64_t));
        if (idx == NULL) return -1;
        w->idx = idx;
        double *vals = PyMem_RawRealloc(w->vals, cap * sizeof(double));
        if (vals == NULL) return -1;
        w->vals = vals;
        w->row_cap = cap;
    }
    w->idx[w->row_n] = col;
    w->vals[w->row_n] = v;
    w->row_n++;
    return 0;
}

/* With the GIL: is `doc` a tuple holding a str wherever a block reads one? */
static int check_doc(const Featurizer *f, PyObject *doc) {
    if (!PyTuple_Check(doc)) {
        PyErr_SetString(PyExc_TypeError, "a document is a tuple of str");
        return -1;
    }
    if (PyTuple_GET_SIZE(doc) < f->n_sources) {
        PyErr_SetString(PyExc_ValueError, "document tuple too short");
        return -1;
    }
    for (Py_ssize_t i = 0; i < f->n_sources; i++) {
        Text t;
        if (text_of(PyTuple_GET_ITEM(doc, i), &t) < 0) return -1;
    }
    return 0;
}

/* The service tier of a checked document (with the GIL); 0 when there is no numeric block. */
static long doc_tier(const Featurizer *f, PyObject *doc) {
    if (!f->has_numeric) return 0;
    Text t;
    text_of(PyTuple_GET_ITEM(doc, 0), &t);
    return service_tier(&t, PyTuple_GET_ITEM(doc, 0), f->tier_of);
}

static inline void doc_text(PyObject *doc, Py_ssize_t i, Text *t) { /* a checked item: no GIL needed */
    PyObject *o = PyTuple_GET_ITEM(doc, i);
    t->kind = PyUnicode_KIND(o);
    t->data = PyUnicode_DATA(o);
    t->n = PyUnicode_GET_LENGTH(o);
}

/* Where the first `n` whitespace-separated words end: their word n-grams are those of
 * " ".join(text.split()[:n]), since whitespace separates tokens either way. */
static Py_ssize_t leading_words_end(const Text *t, int n) {
    Py_ssize_t i = 0;
    for (int k = 0; k < n; k++) {
        while (i < t->n && is_space(PyUnicode_READ(t->kind, t->data, i))) i++;
        if (i == t->n) break;
        while (i < t->n && !is_space(PyUnicode_READ(t->kind, t->data, i))) i++;
    }
    return i;
}

/* The feature row of a checked document tuple (text, lowered text, one prepared text per block) into
 * w->idx / w->vals. Needs no GIL; -1 only when memory runs out. */
static int featurize(const Featurizer *f, Work *w, PyObject *doc, long tier) {
    w->row_n = 0;
    CountSink sink = {{collect_term}, w};
    for (Py_ssize_t b = 0; b < f->n_blocks; b++) {
        const Block *blk = &f->blocks[b];
        Text t;
        doc_text(doc, blk->source, &t);
        if (blk->lead_words > 0) t.n = leading_words_end(&t, blk->lead_words);
        w->n_touched = 0;
        w->n_keys = 0;
        int rc;
        if (blk->kind == WORDS) {
            rc = word_terms(&t, blk->min_n, blk->max_n, &w->tokens, &sink.base);
            if (rc == 0) count_keys(w, blk);
        } else {
            rc = char_counts(w, blk, b, &t);
        }
        const double *idf = blk->idf.buf;
        double ss = 0.0;
        Py_ssize_t first = w->row_n;
        for (Py_ssize_t i = 0; rc == 0 && i < w->n_touched; i++) {
            int32_t g = w->touched[i];
            double tf = (double)w->counts[g];
            /* most terms occur once, and log(1) + 1 is 1: skip the logarithm for them */
            double v = (blk->sublinear && tf > 1.0 ? log(tf) + 1.0 : tf) * idf[g - blk->offset];
            ss += v * v;
            rc = row_push(w, g, v);
        }
        for (Py_ssize_t i = 0; i < w->n_touched; i++) w->counts[w->touched[i]] = 0;
        if (rc < 0) return -1;
        if (ss > 0.0) { /* L2 norm per block, then the block's weight in the union */
            double scale = blk->weight / sqrt(ss);
            for (Py_ssize_t i = first; i < w->row_n; i++) w->vals[i] *= scale;
        }
    }
    if (f->has_numeric) {
        Text t, low;
        doc_text(doc, 0, &t);
        doc_text(doc, 1, &low);
        double m[N_MAGNITUDES + MAX_PHRASES];
        magnitudes(&t, &low, tier, &f->phrases, f->number_rules, m);
        const double *mean = f->mean.buf, *scale = f->scale.buf;
        for (Py_ssize_t j = 0; j < f->numeric_size; j++) {
            double v = (m[j] - mean[j]) / scale[j] * f->numeric_weight;
            if (v != 0.0 && row_push(w, f->numeric_offset + j, v) < 0) return -1;
        }
    }
    return 0;
}

/* raw[k] = sum over the row of value * weights[col, k]: every model's decision function at once. The rows
 * are read a few ahead (prefetched): this gather is the other half of the cache misses. Weights are
 * float32 when the models' coefficients are (training rounds them so): half the memory to read. */
#define RAW_SCORES(T)                                                                                      \
    static void raw_scores_##T(const T *weights, Py_ssize_t width, const Work *w, double *raw) {            \
        memset(raw, 0, width * sizeof(double));                                                            \
        for (Py_ssize_t i = 0; i < w->row_n; i++) {                                                        \
            if (i + AHEAD < w->row_n) {                                                                    \
                const char *ahead = (const char *)(weights + w->idx[i + AHEAD] * width);                   \
                for (Py_ssize_t b = 0; b < width * (Py_ssize_t)sizeof(T); b += 64) __builtin_prefetch(ahead + b); \
            }                                                                                              \
            const T *row = weights + w->idx[i] * width;                                                    \
            double v = w->vals[i];                                                                         \
            for (Py_ssize_t k = 0; k < width; k++) raw[k] += v * (double)row[k];                           \
        }                                                                                                  \
    }
RAW_SCORES(float)
RAW_SCORES(double)

static void raw_scores(const Featurizer *f, const Work *w, double *raw) {
    if (f->weights_f32)
        raw_scores_float(f->weights.buf, f->width, w, raw);
    else
        raw_scores_double(f->weights.buf, f->width, w, raw);
}

static PyObject *Featurizer_row(Featurizer *f, PyObject *doc) {
    if (check_doc(f, doc) < 0) return NULL;
    long tier = doc_tier(f, doc);
    if (tier == -1 && PyErr_Occurred()) return NULL;
    if (featurize(f, &f->work, doc, tier) < 0) return PyErr_NoMemory();
    PyObject *raw = PyBytes_FromStringAndSize(NULL, f->width * sizeof(double));
    if (raw == NULL) return NULL;
    if (f->has_weights) raw_scores(f, &f->work, (double *)PyBytes_AS_STRING(raw));
    Work *w = &f->work;
    return Py_BuildValue("(y#y#N)", (const char *)w->idx, w->row_n * (Py_ssize_t)sizeof(int64_t),
                         (const char *)w->vals, w->row_n * (Py_ssize_t)sizeof(double), raw);
}

/* Checked documents and their tiers, for work done without the GIL. */
typedef struct {
    PyObject *docs; /* a tuple: nobody can change it while threads read it */
    long *tiers;
    Py_ssize_t n;
} Batch;

static int batch_init(const Featurizer *f, PyObject *docs, Batch *batch) {
    batch->tiers = NULL;
    batch->docs = PySequence_Tuple(docs);
    if (batch->docs == NULL) return -1;
    batch->n = PyTuple_GET_SIZE(batch->docs);
    batch->tiers = PyMem_RawMalloc((batch->n ? batch->n : 1) * sizeof(long));
    if (batch->tiers == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < batch->n; i++) {
        PyObject *doc = PyTuple_GET_ITEM(batch->docs, i);
        if (check_doc(f, doc) < 0) return -1;
        batch->tiers[i] = doc_tier(f, doc);
        if (batch->tiers[i] == -1 && PyErr_Occurred()) return -1;
    }
    return 0;
}

static void batch_free(Batch *batch) {
    Py_CLEAR(batch->docs);
    PyMem_RawFree(batch->tiers);
    batch->tiers = NULL;
}

static Work *work_take(Featurizer *f) {
    Work *w = NULL;
    pthread_mutex_lock(&f->spare_lock);
    if (f->n_spare > 0) w = f->spare[--f->n_spare];
    pthread_mutex_unlock(&f->spare_lock);
    if (w != NULL) return w;
    w = PyMem_RawMalloc(sizeof *w);
    if (w != NULL && work_init(w, f->n_features) < 0) {
        work_free(w);
        PyMem_RawFree(w);
        w = NULL;
    }
    return w;
}

static void work_give_back(Featurizer *f, Work *w) {
    pthread_mutex_lock(&f->spare_lock);
    if (f->n_spare < MAX_THREADS) {
        f->spare[f->n_spare++] = w;
        w = NULL;
    }
    pthread_mutex_unlock(&f->spare_lock);
    if (w != NULL) {
        work_free(w);
        PyMem_RawFree(w);
    }
}

typedef struct {
    Featurizer *f;
    const Batch *batch;
    Py_ssize_t *next; /* the first document no thread has taken yet, shared */
    double *out;
    int failed;
} Slice;

/* Documents are taken a few at a time from the shared cursor, not split in equal halves up front: texts
 * differ in length and a thread may be preempted, and a fixed split leaves a core idle at the end. */
#define TAKE 32

static void *score_slice(void *arg) {
    Slice *s = arg;
    Py_ssize_t n = s->batch->n;
    Work *w = work_take(s->f);
    if (w == NULL) {
        s->failed = 1;
        return NULL;
    }
    for (;;) {
        Py_ssize_t start = __atomic_fetch_add(s->next, TAKE, __ATOMIC_RELAXED);
        if (start >= n || s->failed) break;
        Py_ssize_t stop = start + TAKE < n ? start + TAKE : n;
        for (Py_ssize_t i = start; i < stop; i++) {
            if (featurize(s->f, w, PyTuple_GET_ITEM(s->batch->docs, i), s->batch->tiers[i]) < 0) {
                s->failed = 1;
                break;
            }
            raw_scores(s->f, w, s->out + i * s->f->width);
        }
    }
    work_give_back(s->f, w);
    return NULL;
}

/* scores(docs, threads=1): raw scores (n x width float64) as bytes. The texts are read without the GIL,
 * in `threads` threads, which take the documents a few at a time. */
static PyObject *Featurizer_scores(Featurizer *f, PyObject *args) {
    PyObject *docs;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "O|i", &docs, &threads)) return NULL;
    if (!f->has_weights) {
        PyErr_SetString(PyExc_ValueError, "this featurizer has no weights");
        return NULL;
    }
    Batch batch;
    if (batch_init(f, docs, &batch) < 0) {
        batch_free(&batch);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, batch.n * f->width * sizeof(double));
    if (out == NULL) {
        batch_free(&batch);
        return NULL;
    }
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > batch.n) threads = batch.n ? (int)batch.n : 1;
    Slice slices[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0}, failed = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t next = 0;
    for (int k = 0; k < threads; k++) {
        slices[k] = (Slice){f, &batch, &next, (double *)PyBytes_AS_STRING(out), 0};
        if (k > 0) started[k] = pthread_create(&ids[k], NULL, score_slice, &slices[k]) == 0;
    }
    for (int k = 1; k < threads; k++) {
        if (!started[k]) score_slice(&slices[k]); /* could not start a thread: do it here */
    }
    score_slice(&slices[0]);
    for (int k = 1; k < threads; k++) {
        if (started[k]) pthread_join(ids[k], NULL);
    }
    for (int k = 0; k < threads; k++) failed |= slices[k].failed;
    Py_END_ALLOW_THREADS
    batch_free(&batch);
    if (failed) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    return out;
}

/* Many rows as CSR arrays: (indptr int64, indices int32, data float64) as bytes. */
static PyObject *Featurizer_csr(Featurizer *f, PyObject *docs) {
    Batch batch;
    PyObject *result = NULL;
    Py_ssize_t nnz = 0, cap = 1 << 16;
    int64_t *indptr = NULL;
    int32_t *indices = PyMem_RawMalloc(cap * sizeof(int32_t));
    double *data = PyMem_RawMalloc(cap * sizeof(double));
    if (batch_init(f, docs, &batch) < 0) goto done;
    indptr = PyMem_RawMalloc((batch.n + 1) * sizeof(int64_t));
    if (indptr == NULL || indices == NULL || data == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    indptr[0] = 0;
    Work *w = &f->work;
    for (Py_ssize_t i = 0; i < batch.n; i++) {
        if (featurize(f, w, PyTuple_GET_ITEM(batch.docs, i), batch.tiers[i]) < 0) {
            PyErr_NoMemory();
            goto done;
        }
        if (nnz + w->row_n > cap) {
            while (nnz + w->row_n > cap) cap *= 2;
            int32_t *indices2 = PyMem_RawRealloc(indices, cap * sizeof(int32_t));
            if (indices2 != NULL) indices = indices2;
            double *data2 = PyMem_RawRealloc(data, cap * sizeof(double));
            if (data2 != NULL) data = data2;
            if (indices2 == NULL || data2 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
        }
        for (Py_ssize_t j = 0; j < w->row_n; j++) {
            indices[nnz + j] = (int32_t)w->idx[j];
            data[nnz + j] = w->vals[j];
        }
        nnz += w->row_n;
        indptr[i + 1] = nnz;
    }
    result = Py_BuildValue("(y#y#y#)", (const char *)indptr, (batch.n + 1) * (Py_ssize_t)sizeof(int64_t),
                           (const char *)indices, nnz * (Py_ssize_t)sizeof(int32_t), (const char *)data,
                           nnz * (Py_ssize_t)sizeof(double));
done:
    batch_free(&batch);
    PyMem_RawFree(indptr);
    PyMem_RawFree(indices);
    PyMem_RawFree(data);
    return result;
}

static int get_doubles(PyObject *obj, Py_buffer *view, Py_ssize_t count, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 8 || view->format == NULL || strcmp(view->format, "d") != 0 ||
        view->len != count * 8) {
        PyBuffer_Release(view);
        view->obj = NULL;
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
    Py_XDECREF(f->phrase_tuple);
    work_free(&f->work);
    for (int k = 0; k < f->n_spare; k++) {
        work_free(f->spare[k]);
        PyMem_RawFree(f->spare[k]);
    }
    if (f->spare_lock_ready) pthread_mutex_destroy(&f->spare_lock);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

/* Featurizer(blocks, numeric, weights, width, n_features, tier_of, phrases, number_rules=1)
 *   blocks:  [(kind "words"|"chars", min_n, max_n, source, terms, idf, sublinear, weight, offset,
 *              lead_words), ...]
 *   numeric: None or (mean, scale, weight, offset); reads the document's items 0 (text) and 1 (lowered)
 *   weights: None or float64 (n_features, width), C order: the fused models' coefficients */
static int Featurizer_init(Featurizer *f, PyObject *args, PyObject *kwds) {
    PyObject *blocks, *numeric, *weights, *tier_of, *phrases;
    Py_ssize_t width, n_features;
    int rules = 1;
    static char *kwlist[] = {"blocks",  "numeric", "weights",      "width", "n_features",
                             "tier_of", "phrases", "number_rules", NULL};
    if (f->blocks != NULL || f->work.counts != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Featurizer is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOnnOO!|i", kwlist, &PyList_Type, &blocks, &numeric,
                                     &weights, &width, &n_features, &tier_of, &PyTuple_Type, &phrases,
                                     &rules) ||
        number_rules(rules) < 0)
        return -1;
    f->number_rules = rules;
    if (n_features <= 0 || n_features >= INT32_MAX || width < 0) {
        PyErr_SetString(PyExc_ValueError, "bad feature count or width");
        return -1;
    }
    f->n_features = n_features;
    f->width = width;
    if (pthread_mutex_init(&f->spare_lock, NULL) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot create a mutex");
        return -1;
    }
    f->spare_lock_ready = 1;
    Py_INCREF(tier_of);
    f->tier_of = tier_of;
    Py_INCREF(phrases);
    f->phrase_tuple = phrases;
    if (phrases_of(phrases, &f->phrases) < 0) return -1;
    f->n_blocks = PyList_GET_SIZE(blocks);
    f->blocks = PyMem_Calloc(f->n_blocks ? f->n_blocks : 1, sizeof(Block));
    if (f->blocks == NULL || work_init(&f->work, n_features) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t b = 0; b < f->n_blocks; b++) {
        Block *blk = &f->blocks[b];
        const char *kind;
        PyObject *terms, *idf;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(blocks, b), "siinOOpdni", &kind, &blk->min_n, &blk->max_n,
                              &blk->source, &terms, &idf, &blk->sublinear, &blk->weight, &blk->offset,
                              &blk->lead_words))
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
        if (blk->source + 1 > f->n_sources) f->n_sources = blk->source + 1;
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
        f->numeric_size = N_MAGNITUDES + f->phrases.n;
        if (f->numeric_offset < 0 || f->numeric_offset + f->numeric_size > n_features) {
            PyErr_SetString(PyExc_ValueError, "numeric block outside the feature range");
            return -1;
        }
        if (get_doubles(mean, &f->mean, f->numeric_size, "mean") < 0 ||
            get_doubles(scale, &f->scale, f->numeric_size, "scale") < 0)
            return -1;
        f->has_numeric = 1;
        if (f->n_sources < 2) f->n_sources = 2;
    }
    if (weights != Py_None) {
        if (PyObject_GetBuffer(weights, &f->weights, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
        const char *fmt = f->weights.format ? f->weights.format : "";
        f->weights_f32 = strcmp(fmt, "f") == 0;
        if (!(f->weights_f32 || strcmp(fmt, "d") == 0) ||
            f->weights.len != n_features * width * f->weights.itemsize) {
            PyBuffer_Release(&f->weights);
            f->weights.obj = NULL;
            PyErr_Format(PyExc_ValueError, "weights must be %zd x %zd contiguous float32 or float64 values",
                         n_features, width);
            return -1;
        }
        f->has_weights = 1;
    }
    return 0;
}

static PyMethodDef Featurizer_methods[] = {
    {"row", (PyCFunction)Featurizer_row, METH_O,
     "row(doc) -> (indices int64, values float64, raw scores float64) as bytes"},
    {"scores", (PyCFunction)Featurizer_scores, METH_VARARGS,
     "scores(docs, threads=1) -> raw scores (n x width float64) as bytes"},
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
     "numeric_features(text, lowered, tier_of, phrases, number_rules=1) -> list[float]"},
    {"char_wb", py_char_wb, METH_VARARGS, "char_wb(lowered, min_n, max_n) -> list[str], as scikit-learn's"},
    {"split_identifiers", py_split_identifiers, METH_O, "split_identifiers(text) -> text, CamelCase as words"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "engine._native", "The serving hot path: feature rows and fused scores.", -1,
    module_methods,        NULL,             NULL,                                                   NULL,
    NULL};

PyMODINIT_FUNC PyInit__native(void) {
    init_classes();
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0) return PyErr_SetFromErrno(PyExc_OSError);
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
