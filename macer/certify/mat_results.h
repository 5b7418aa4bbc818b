// MACER's certification results as a MATLAB level-5 .mat file (what its rs/certify.py writes
// with scipy.io.savemat and its visualize/plotcurves.m reads): one radius per image.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "macer/certify/report.h"

namespace macer {

// The bytes of a MAT v5 file holding each (name, values) as a 1 x N double matrix, in order
// (uncompressed; scipy.io.savemat writes a 1-d numpy array as such a row by default).
std::string mat5_double_rows(const std::vector<std::pair<std::string, std::vector<double>>>& variables);

// MACER's variables from certification rows: "hard" (Certify rows of --mode hard), "soft"
// (Certify rows of --mode soft, whose radius columns hold the soft certificate), or both
// (Both rows). Each value is the radius where the prediction is correct and -1 otherwise
// (wrong or abstained), as MACER's certify() stores it.
std::vector<std::pair<std::string, std::vector<double>>> mat_variables(const std::vector<CertifyRow>& rows,
                                                                        TsvKind kind, bool soft_only);

// Writes mat5_double_rows(mat_variables(...)) to `path` whole or not at all (write_file_atomic).
void write_mat_results(const std::string& path, const std::vector<CertifyRow>& rows, TsvKind kind, bool soft_only);

}  // namespace macer
