/*
 * mix mailbox names and LIST patterns (docs/mailbox-list.md "Names and
 * patterns"): the two pure pieces the mailbox list index stands on.
 *
 * Names are IMAP4rev2 mailbox names (RFC 9051 §5.1): valid UTF-8 with a
 * hierarchy separator chosen by the caller (one ASCII punctuation
 * character other than '*' and '%').  A valid name has no control
 * characters (C0, DEL, C1), no U+2028/U+2029, no empty component, no
 * leading or trailing separator, at most MIX_MBOX_NAME_MAX_LEN bytes and
 * at most MIX_MBOX_NAME_MAX_DEPTH components.  "INBOX" as the first
 * component is case-insensitive: normalisation spells it "INBOX"; nothing
 * else changes case.
 *
 * Patterns are LIST reference + mailbox arguments (RFC 9051 §6.3.9): '*'
 * matches any bytes including the separator, '%' any bytes except the
 * separator; everything else matches itself, case-sensitively, except
 * that the five bytes of a name's leading "INBOX" component match pattern
 * letters in either case.  Matching costs at most (name bytes + 1) x
 * (pattern bytes + 1) steps, whatever the pattern: no backtracking.
 *
 * Threads: every function here is pure; any thread, any context (inside
 * or outside a read-side section).  A compiled pattern is immutable and
 * may be used by any number of threads at once.
 *
 * Return conventions as in mix.h; every MIX_EINVAL sets mix_last_error()
 * to a message naming the problem and its byte position ("... at byte N",
 * N counted from 0 in the argument named).
 */
#ifndef MIX_MAILBOX_NAME_H
#define MIX_MAILBOX_NAME_H

#include <stddef.h>
#include <stdint.h>

#include "mix/mix.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest valid name in bytes (without a terminating NUL). */
#define MIX_MBOX_NAME_MAX_LEN 1000u
/* Most components in a valid name ("a/b/c" has 3). */
#define MIX_MBOX_NAME_MAX_DEPTH 64u
/* Longest reference + mailbox pattern accepted by
 * mix_mbox_name_pattern_new(), in bytes. */
#define MIX_MBOX_PATTERN_MAX_LEN (2u * MIX_MBOX_NAME_MAX_LEN)

/* One component of a name: name[offset .. offset + len). */
struct mix_mbox_name_component {
	uint32_t offset;
	uint32_t len;
};

/* Is sep usable as a hierarchy separator?  ASCII punctuation (0x21-0x7e,
 * not a letter or digit), not '*' or '%'.  Returns 0 or MIX_EINVAL.  Any
 * thread. */
MIX_API int mix_mbox_name_sep_check(char sep);

/* Check that name[0..len) is a valid mailbox name with separator sep
 * (rules above; name need not be NUL-terminated, and a NUL byte in it is
 * a control character).  Returns 0 or MIX_EINVAL (bad separator, or the
 * first problem found scanning from byte 0: empty name, invalid UTF-8 —
 * stray or missing continuation byte, overlong encoding, surrogate, above
 * U+10FFFF; the position is the sequence's first byte —, control
 * character, line or paragraph separator, leading, doubled or trailing
 * separator, longer than MIX_MBOX_NAME_MAX_LEN, deeper than
 * MIX_MBOX_NAME_MAX_DEPTH).  Any thread. */
MIX_API int mix_mbox_name_check(const char *name, size_t len, char sep);

/* Check name[0..len) as mix_mbox_name_check() does and write its normal
 * form, NUL-terminated, to out (out_size >= len + 1; out may be name
 * itself).  The normal form has the same length: a first component equal
 * to "INBOX" ignoring ASCII case is spelled "INBOX"; every other byte is
 * copied.  The list index stores and compares names in normal form.
 * Returns 0 or MIX_EINVAL (as mix_mbox_name_check(), or out too small;
 * out is untouched then).  Any thread. */
MIX_API int mix_mbox_name_normalize(const char *name, size_t len, char sep,
				    char *out, size_t out_size);

/* Split the valid name name[0..len) into its components, in order, into
 * comps[0 .. *count_r).  max = MIX_MBOX_NAME_MAX_DEPTH always suffices.
 * Returns 0 or MIX_EINVAL (invalid name, or more than max components;
 * comps may have been written then).  Any thread. */
MIX_API int mix_mbox_name_split(const char *name, size_t len, char sep,
				struct mix_mbox_name_component *comps,
				uint32_t max, uint32_t *count_r);

/* The parent of the valid name name[0..len): returns 1 and sets
 * *parent_len_r so that name[0 .. *parent_len_r) is the parent's name
 * ("a/b/c" -> "a/b"); returns 0 for a top-level name (*parent_len_r = 0);
 * MIX_EINVAL for an invalid name.  Pass a normalised name to get a
 * normalised parent.  Any thread. */
MIX_API int mix_mbox_name_parent(const char *name, size_t len, char sep,
				 size_t *parent_len_r);

/* ---- LIST patterns ---------------------------------------------------- */

struct mix_mbox_pattern;

/* Compile a LIST command's reference and mailbox pattern into *pat_r.
 * The pattern is ref followed by pattern, except that an empty ref or a
 * pattern starting with the separator (an absolute name, RFC 9051
 * §6.3.9) gives pattern alone; ref "a/" with pattern "%" is "a/%", ref
 * "a" with pattern "b" is "ab" (the RFC leaves a ref that does not end in
 * the separator to the server; this is plain concatenation).  Runs of
 * wildcards are reduced ("**", "*%", "%*" are "*"; "%%" is "%") without
 * changing what matches.  Both arguments must be valid UTF-8 without
 * control characters; empty components, leading or trailing separators
 * are allowed (they simply match no valid name).  An empty mailbox
 * pattern (LIST "" "", which asks for the separator) is the caller's to
 * answer; here it compiles to ref alone.  Free with
 * mix_mbox_name_pattern_free().  Returns 0, MIX_EINVAL (bad separator;
 * invalid UTF-8 or a control character in ref or pattern — the message
 * says which argument and the byte position; together longer than
 * MIX_MBOX_PATTERN_MAX_LEN) or -ENOMEM.  Any thread; the caller owns
 * the pattern. */
MIX_API int mix_mbox_name_pattern_new(const char *ref, size_t ref_len,
				      const char *pattern, size_t pattern_len,
				      char sep,
				      struct mix_mbox_pattern **pat_r);

/* Free a pattern and set *pat to NULL (NULL or *pat NULL: no-op).  Any
 * thread, once no other thread uses the pattern; cannot fail. */
MIX_API void mix_mbox_name_pattern_free(struct mix_mbox_pattern **pat);

/* Returns the combined, reduced pattern text (NUL-terminated, owned by
 * pat, valid until it is freed) and its length in *len_r (may be NULL).
 * Any thread; cannot fail. */
MIX_API const char *mix_mbox_name_pattern_text(const struct mix_mbox_pattern *pat,
					       size_t *len_r);

/* Does the name name[0..len) match pat?  Returns 1 or 0.  name is not
 * validated (any bytes are safe); the list index passes normalised
 * names.  A first component equal to "INBOX" ignoring case matches
 * pattern letters in either case ("inbox/%" and "I%" match "INBOX/a" and
 * "INBOX"); every other byte must be equal, or be taken by a wildcard.
 * Any thread, any number at once on one pattern. */
MIX_API int mix_mbox_name_match(const struct mix_mbox_pattern *pat,
				const char *name, size_t len);

/* Could a descendant of the name name[0..len) match pat?
 * Returns 1 if some name + sep + t (t non-empty) matches pat, else 0.
 * When it returns 0, no descendant matches, so a hierarchy walk may skip
 * the subtree; RECURSIVEMATCH and the CHILDREN return option use it to
 * decide whether children need looking at.  Exact when t may be any
 * bytes; so a pattern that only matches invalid descendants (such as
 * "a//%", with its empty component) may still get 1 for "a".  Any
 * thread. */
MIX_API int mix_mbox_name_match_children(const struct mix_mbox_pattern *pat,
					 const char *name, size_t len);

#ifdef __cplusplus
}
#endif

#endif
