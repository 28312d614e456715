/*
 * Mailbox names (RFC 9051 §5.1) and LIST patterns (RFC 9051 §6.3.9):
 * validation, normalisation, splitting, parents, and the pattern matcher
 * the mailbox list index uses for LIST (docs/mailbox-list.md "Names and
 * patterns").
 *
 * Who: pure functions on the caller's thread; a compiled pattern is
 * immutable after mix_mbox_name_pattern_new() returns, so any number of
 * threads may match with it at once.
 *
 * Invariants:
 * - A name is scanned once, left to right; the first problem found is
 *   the one reported, with the byte offset of where it starts (for a
 *   UTF-8 problem, the first byte of the sequence).
 * - The separator is ASCII and never a UTF-8 continuation or lead byte,
 *   so matching and splitting work on bytes.
 * - A compiled pattern has no two wildcards in a row ("**", "*%", "%*"
 *   are "*", "%%" is "%": the same strings match).  So following a
 *   wildcard needs one step of closure, and the matcher, which simulates
 *   the pattern's automaton with one bit per pattern position, examines
 *   at most (pattern length + 1) states per name byte: no backtracking,
 *   whatever the pattern.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mbox-name.h"

struct mix_mbox_pattern {
	char sep;
	uint32_t len;
	int star_tail;          /* text ends in '*' */
	char text[];            /* len bytes, then NUL */
};

#define PAT_WORDS ((MIX_MBOX_PATTERN_MAX_LEN + 1 + 63) / 64)

static int is_wild(char c)
{
	return c == '*' || c == '%';
}

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

MIX_API int mix_mbox_name_sep_check(char sep)
{
	unsigned char c = (unsigned char)sep;
	if (c < 0x21 || c > 0x7e || is_wild(sep) ||
	    (c >= '0' && c <= '9') || (ascii_lower(c) >= 'a' && ascii_lower(c) <= 'z'))
		return mix_err(MIX_EINVAL, "mailbox name: separator 0x%02x is not "
			       "ASCII punctuation other than '*' and '%%'", c);
	return 0;
}

/* One UTF-8 sequence at s[0..avail): its length, or 0 with *why set. */
static size_t utf8_seq(const unsigned char *s, size_t avail, uint32_t *cp_r,
		       const char **why)
{
	size_t n, k;
	uint32_t v, min;
	if (s[0] < 0xc0) {
		*why = "invalid UTF-8 (stray continuation byte)";
		return 0;
	}
	if (s[0] < 0xe0) {
		n = 2; v = s[0] & 0x1f; min = 0x80;
	} else if (s[0] < 0xf0) {
		n = 3; v = s[0] & 0x0f; min = 0x800;
	} else if (s[0] < 0xf8) {
		n = 4; v = s[0] & 0x07; min = 0x10000;
	} else {
		*why = "invalid UTF-8 (byte never used in UTF-8)";
		return 0;
	}
	for (k = 1; k < n; k++) {
		if (k >= avail || (s[k] & 0xc0) != 0x80) {
			*why = "invalid UTF-8 (missing continuation byte)";
			return 0;
		}
		v = v << 6 | (s[k] & 0x3f);
	}
	if (v < min)
		*why = "invalid UTF-8 (overlong encoding)";
	else if (v >= 0xd800 && v <= 0xdfff)
		*why = "invalid UTF-8 (surrogate code point)";
	else if (v > 0x10ffff)
		*why = "invalid UTF-8 (code point above U+10FFFF)";
	else {
		*cp_r = v;
		return n;
	}
	return 0;
}

/* The character at s[i]: its length in bytes, or 0 with *why naming what
 * no name or pattern may contain (RFC 9051 §5.1: valid UTF-8, no C0, DEL,
 * C1, U+2028, U+2029). */
static size_t char_at(const unsigned char *s, size_t len, size_t i,
		      const char **why)
{
	uint32_t cp = s[i];
	size_t n = 1;
	if (s[i] >= 0x80 && !(n = utf8_seq(s + i, len - i, &cp, why)))
		return 0;
	if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
		*why = "control character";
	else if (cp == 0x2028)
		*why = "line separator U+2028";
	else if (cp == 0x2029)
		*why = "paragraph separator U+2029";
	else
		return n;
	return 0;
}

static int char_err(const char *arg, const char *why, const unsigned char *s,
		    size_t i)
{
	return mix_err(MIX_EINVAL, "%s: %s (byte 0x%02x) at byte %zu", arg, why,
		       s[i], i);
}

static int name_err(const char *why, size_t i)
{
	return mix_err(MIX_EINVAL, "mailbox name: %s at byte %zu", why, i);
}

/* A separator at s[i]: the checks that depend on its neighbours. */
static int sep_at(const unsigned char *s, size_t len, size_t i,
		  uint32_t *depth)
{
	if (i == 0)
		return name_err("leading separator", 0);
	if (s[i - 1] == s[i])
		return name_err("empty component (doubled separator)", i);
	if (i + 1 == len)
		return name_err("trailing separator", i);
	if (++*depth > MIX_MBOX_NAME_MAX_DEPTH)
		return mix_err(MIX_EINVAL, "mailbox name: more than %u levels "
			       "at byte %zu", MIX_MBOX_NAME_MAX_DEPTH, i);
	return 0;
}

MIX_API int mix_mbox_name_check(const char *name, size_t len, char sep)
{
	const unsigned char *s = (const unsigned char *)name;
	uint32_t depth = 1;
	const char *why;
	size_t i = 0, n;
	int r = mix_mbox_name_sep_check(sep);
	if (r < 0)
		return r;
	if (len == 0)
		return name_err("empty name", 0);
	while (i < len) {
		if (s[i] == (unsigned char)sep) {
			if ((r = sep_at(s, len, i, &depth)) < 0)
				return r;
			n = 1;
		} else if (!(n = char_at(s, len, i, &why))) {
			return char_err("mailbox name", why, s, i);
		}
		/* a character that straddles the limit is over it too */
		if (i + n > MIX_MBOX_NAME_MAX_LEN)
			return mix_err(MIX_EINVAL, "mailbox name: longer than "
				       "%u bytes at byte %u",
				       MIX_MBOX_NAME_MAX_LEN,
				       MIX_MBOX_NAME_MAX_LEN);
		i += n;
	}
	return 0;
}

/* Length of the leading "INBOX" component (any case) of s, or 0. */
static size_t inbox_window(const char *s, size_t len, char sep)
{
	size_t i;
	if (len < 5 || (len > 5 && s[5] != sep))
		return 0;
	/* ASCII only: strncasecmp follows the locale (Turkish dotless i) */
	for (i = 0; i < 5; i++)
		if (ascii_lower((unsigned char)s[i]) != "inbox"[i])
			return 0;
	return 5;
}

MIX_API int mix_mbox_name_normalize(const char *name, size_t len, char sep,
				    char *out, size_t out_size)
{
	int r = mix_mbox_name_check(name, len, sep);
	if (r < 0)
		return r;
	if (out_size < len + 1)
		return mix_err(MIX_EINVAL, "mailbox name: output buffer of %zu "
			       "bytes, need %zu", out_size, len + 1);
	memmove(out, name, len);
	out[len] = '\0';
	if (inbox_window(out, len, sep))
		memcpy(out, "INBOX", 5);
	return 0;
}

MIX_API int mix_mbox_name_split(const char *name, size_t len, char sep,
				struct mix_mbox_name_component *comps,
				uint32_t max, uint32_t *count_r)
{
	uint32_t count = 0;
	size_t start = 0, i;
	int r = mix_mbox_name_check(name, len, sep);
	if (r < 0)
		return r;
	for (i = 0; i <= len; i++) {
		if (i < len && name[i] != sep)
			continue;
		if (count == max)
			return mix_err(MIX_EINVAL, "mailbox name: more than %u "
				       "components (the caller's array) at "
				       "byte %zu", max, start);
		comps[count].offset = (uint32_t)start;
		comps[count].len = (uint32_t)(i - start);
		count++;
		start = i + 1;
	}
	*count_r = count;
	return 0;
}

MIX_API int mix_mbox_name_parent(const char *name, size_t len, char sep,
				 size_t *parent_len_r)
{
	const char *p;
	int r = mix_mbox_name_check(name, len, sep);
	if (r < 0)
		return r;
	p = memrchr(name, sep, len);
	*parent_len_r = p ? (size_t)(p - name) : 0;
	return p != NULL;
}

/* ---- patterns ---------------------------------------------------------- */

static int pattern_arg_check(const char *arg, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	const char *why;
	size_t i = 0, n;
	while (i < len) {
		if (!(n = char_at(s, len, i, &why)))
			return char_err(arg, why, s, i);
		i += n;
	}
	return 0;
}

/* Append src to pat->text, merging runs of wildcards (file comment). */
static void pattern_append(struct mix_mbox_pattern *pat, const char *src,
			   size_t len)
{
	size_t i;
	for (i = 0; i < len; i++) {
		char c = src[i], *last = pat->len ? &pat->text[pat->len - 1] : NULL;
		if (last && is_wild(c) && is_wild(*last)) {
			if (c != *last)
				*last = '*';
			continue;
		}
		pat->text[pat->len++] = c;
	}
}

MIX_API int mix_mbox_name_pattern_new(const char *ref, size_t ref_len,
				      const char *pattern, size_t pattern_len,
				      char sep,
				      struct mix_mbox_pattern **pat_r)
{
	struct mix_mbox_pattern *pat;
	int r;
	if ((r = mix_mbox_name_sep_check(sep)) < 0 ||
	    (r = pattern_arg_check("LIST reference", ref, ref_len)) < 0 ||
	    (r = pattern_arg_check("LIST pattern", pattern, pattern_len)) < 0)
		return r;
	/* RFC 9051 §6.3.9: a pattern naming an absolute name breaks out of
	 * the reference */
	if (pattern_len > 0 && pattern[0] == sep)
		ref_len = 0;
	if (ref_len + pattern_len > MIX_MBOX_PATTERN_MAX_LEN)
		return mix_err(MIX_EINVAL, "LIST reference + pattern: longer "
			       "than %u bytes at byte %u",
			       MIX_MBOX_PATTERN_MAX_LEN,
			       MIX_MBOX_PATTERN_MAX_LEN);
	pat = malloc(sizeof(*pat) + ref_len + pattern_len + 1);
	if (!pat)
		return mix_err(-ENOMEM, "LIST pattern: out of memory");
	pat->sep = sep;
	pat->len = 0;
	pattern_append(pat, ref, ref_len);
	pattern_append(pat, pattern, pattern_len);
	pat->text[pat->len] = '\0';
	pat->star_tail = pat->len > 0 && pat->text[pat->len - 1] == '*';
	*pat_r = pat;
	return 0;
}

MIX_API void mix_mbox_name_pattern_free(struct mix_mbox_pattern **pat)
{
	if (!pat)
		return;
	free(*pat);
	*pat = NULL;
}

MIX_API const char *mix_mbox_name_pattern_text(const struct mix_mbox_pattern *pat,
					       size_t *len_r)
{
	if (len_r)
		*len_r = pat->len;
	return pat->text;
}

/* ---- the matcher --------------------------------------------------------
 * State j means "text[0..j) has matched the name bytes read so far".  A
 * wildcard state also holds the state after it (it may match nothing);
 * reading byte c, a '*' state stays, a '%' state stays unless c is the
 * separator, a literal state advances when c equals it.  The name
 * matches when state len (the whole pattern) is held at the end. */

static void state_add(const struct mix_mbox_pattern *pat, uint64_t *set,
		      uint32_t j)
{
	set[j / 64] |= 1ull << (j % 64);
	if (j < pat->len && is_wild(pat->text[j])) {
		j++;
		set[j / 64] |= 1ull << (j % 64);
	}
}

static int state_has(const uint64_t *set, uint32_t j)
{
	return (set[j / 64] >> (j % 64)) & 1;
}

/* One name byte: next = the states cur leads to on c.  Returns how many
 * states of cur were examined. */
static uint64_t states_step(const struct mix_mbox_pattern *pat,
			    const uint64_t *cur, uint64_t *next, size_t words,
			    unsigned char c, int fold)
{
	uint64_t examined = 0, bits;
	size_t w;
	memset(next, 0, words * sizeof(*next));
	for (w = 0; w < words; w++) {
		for (bits = cur[w]; bits; bits &= bits - 1) {
			uint32_t j = (uint32_t)(w * 64 + __builtin_ctzll(bits));
			unsigned char pc;
			examined++;
			if (j >= pat->len)
				continue;
			pc = (unsigned char)pat->text[j];
			if (pc == '*' || (pc == '%' && c != (unsigned char)pat->sep))
				state_add(pat, next, j);
			else if (pc == c ||
				 (fold && pc != '%' && ascii_lower(pc) == ascii_lower(c)))
				state_add(pat, next, j + 1);
		}
	}
	return examined;
}

static int states_any(const uint64_t *set, size_t words, uint32_t below)
{
	size_t w;
	for (w = 0; w < words; w++) {
		uint64_t bits = set[w];
		if (w * 64 + 64 > below)
			bits &= below > w * 64 ? (1ull << (below - w * 64)) - 1 : 0;
		if (bits)
			return 1;
	}
	return 0;
}

int mix_mbox_match_counted(const struct mix_mbox_pattern *pat,
			   const char *name, size_t len, int children,
			   uint64_t *steps_r)
{
	uint64_t a[PAT_WORDS], b[PAT_WORDS], *cur = a, *next = b, *t;
	uint64_t steps = 0;
	size_t words = (pat->len + 1 + 63) / 64, i;
	size_t fold = inbox_window(name, len, pat->sep);
	size_t total = children ? len + 1 : len;
	int r = -1;
	memset(a, 0, words * sizeof(*a));
	state_add(pat, cur, 0);
	for (i = 0; i < total && r < 0; i++) {
		/* a trailing '*' that is reached takes any rest (and, for
		 * children, any descendant) */
		if (pat->star_tail && state_has(cur, pat->len - 1)) {
			r = 1;
			break;
		}
		steps += states_step(pat, cur, next, words,
				     i < len ? (unsigned char)name[i]
					     : (unsigned char)pat->sep,
				     i < fold);
		t = cur; cur = next; next = t;
		if (!states_any(cur, words, pat->len + 1))
			r = 0;
	}
	if (r < 0) {
		/* children: some non-empty rest of the pattern is left, and
		 * any non-empty pattern matches some non-empty string */
		r = children ? states_any(cur, words, pat->len)
			     : state_has(cur, pat->len);
	}
	if (steps_r)
		*steps_r += steps;
	return r;
}

MIX_API int mix_mbox_name_match(const struct mix_mbox_pattern *pat,
				const char *name, size_t len)
{
	return mix_mbox_match_counted(pat, name, len, 0, NULL);
}

MIX_API int mix_mbox_name_match_children(const struct mix_mbox_pattern *pat,
					 const char *name, size_t len)
{
	return mix_mbox_match_counted(pat, name, len, 1, NULL);
}
