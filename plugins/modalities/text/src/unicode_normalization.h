// Unicode normalisation forms (UAX #15) from the Unicode Character Database tables generated at
// build time (unicode/make_normalization_tables.py). Every output byte keeps the input range of
// the character it came from; a composed character covers the ranges of everything composed into it.
#pragma once

#include <cstdint>
#include <string_view>

#include "source_text.h"

namespace moe::text {

enum class NormalForm { NFC, NFD, NFKC, NFKD };

// The Unicode version of the tables ("15.0.0").
const char* unicode_tables_version();

// True when the quick check says text is already in `form` (then normalising changes nothing).
bool is_normalized_quick(NormalForm form, std::string_view text);

// Appends the normalisation of source (valid UTF-8) to out.
void normalize_unicode(NormalForm form, const SourceText& source, OwnedText& out);

}  // namespace moe::text
