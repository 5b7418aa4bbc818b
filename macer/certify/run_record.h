// The record beside a certification TSV of what produced its rows (flags, a fingerprint of the
// checkpoint, the shard): to resume an interrupted run and to merge the shards of one run.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "macer/certify/report.h"

namespace macer {

// The record's path: "<tsv>.run.json".
std::string run_record_path(const std::string& tsv_path);

// A fingerprint of a file's bytes (64-bit FNV-1a, hex) and its size, to recognise a checkpoint.
std::string file_fingerprint(const std::string& path);

// Writes the record (a JSON object of key -> value, every value a string) whole.
void write_run_record(const std::string& tsv_path, const std::vector<std::pair<std::string, std::string>>& record);

// The record's keys and values (every value a string); empty when there is none; throws when
// it is damaged.
std::map<std::string, std::string> read_run_record(const std::string& tsv_path);

// Throws unless the stored record holds exactly these keys and values (its image count aside,
// which grows with --count); the error names the first key that differs.
void check_run_record(const std::string& tsv_path, const std::vector<std::pair<std::string, std::string>>& record);

// The rows of an interrupted run: a last line without its newline (cut off by the kill) is
// removed from the file, the rest read back and checked to be `kind`'s layout and the first rows
// of `planned` (the image indices of the run, in order). Returns them.
std::vector<CertifyRow> rows_to_resume(const std::string& tsv_path, TsvKind kind, const std::vector<int64_t>& planned);

// "I/N" (0 <= I < N) as (I, N); "" as (0, 1). `what` names the text's origin in errors.
std::pair<int64_t, int64_t> parse_shard(const std::string& text, const std::string& what);

// True when the TSV's record says it is one shard ("shard": "I/N") of a run.
bool is_shard(const std::string& tsv_path);

// The TSVs of all N shards of one run (--shard I/N) as one file: every shard once, records equal
// but for the shard, every planned image ("images" of them from "start", every "skip") exactly
// once; rows in index order. Anything else throws, naming what is missing or repeated.
TsvFile merge_shards(const std::vector<std::string>& tsv_paths);

}  // namespace macer
