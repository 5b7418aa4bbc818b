// Resuming an interrupted certification: the record beside a TSV of what produced its rows
// (flags and a fingerprint of the checkpoint), and the whole rows already written.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "macer/certify_report.h"

namespace macer {

// The record's path: "<tsv>.run.json".
std::string run_record_path(const std::string& tsv_path);

// A fingerprint of a file's bytes (64-bit FNV-1a, hex) and its size, to recognise a checkpoint.
std::string file_fingerprint(const std::string& path);

// Writes the record (a JSON object of key -> value, every value a string) whole.
void write_run_record(const std::string& tsv_path, const std::vector<std::pair<std::string, std::string>>& record);

// Throws unless the stored record holds exactly these keys and values; the error names the
// first key that differs, its stored and its new value.
void check_run_record(const std::string& tsv_path, const std::vector<std::pair<std::string, std::string>>& record);

// The rows of an interrupted run: a last line without its newline (cut off by the kill) is
// removed from the file, the rest read back and checked to be `kind`'s layout and the first rows
// of `planned` (the image indices of the run, in order). Returns them.
std::vector<CertifyRow> rows_to_resume(const std::string& tsv_path, TsvKind kind, const std::vector<int64_t>& planned);

}  // namespace macer
