// The observer's page (engine/src/observer/page/*), built into the library by embed_page.cmake.
#pragma once

#include <cstddef>
#include <string_view>

namespace coppice::observer::detail {

struct PageAsset {
  std::string_view path;  // "/index.html", "/app.js", ...
  std::string_view content_type;
  std::string_view body;
};
extern const PageAsset page_assets[];
extern const std::size_t page_asset_count;

}  // namespace coppice::observer::detail
