# Builds the `infron` gateway and the `infron-mock-provider` demo provider.

# The dashboard's front-end packages from the npm registry, pinned by the lockfile; the build
# bundles them into the binary (crates/api/build.rs).
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY crates crates
COPY migrations migrations
# The api crate's manifest names its end-to-end test target under tests/.
COPY tests tests
COPY web web
COPY --from=web /src/web/node_modules web/node_modules
ENV INFRON_REQUIRE_WEB_ASSETS=1
RUN cargo build --release --locked --bin infron --bin infron-mock-provider

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 infron
WORKDIR /app
COPY --from=build /src/target/release/infron /src/target/release/infron-mock-provider /usr/local/bin/
COPY config config
USER infron
ENV INFRON_BIND=0.0.0.0:8080 INFRON_CATALOG=/app/config/catalog.toml
EXPOSE 8080
ENTRYPOINT ["infron"]
CMD ["serve"]
