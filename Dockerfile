# Builds the `infron` gateway and the `infron-mock-provider` demo provider.

# The dashboard's front-end packages from the npm registry, pinned by the lockfile; the build
# bundles them into the binary (crates/api/build.rs).
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM rust:1-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when a manifest or the lock
# file changes, not on every source edit. The workspace crates are empty stand-ins here.
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY crates/store/Cargo.toml crates/store/Cargo.toml
COPY crates/billing/Cargo.toml crates/billing/Cargo.toml
COPY crates/router/Cargo.toml crates/router/Cargo.toml
COPY crates/accounts/Cargo.toml crates/accounts/Cargo.toml
COPY crates/api/Cargo.toml crates/api/Cargo.toml
COPY crates/mock-provider/Cargo.toml crates/mock-provider/Cargo.toml
COPY crates/catalog-import/Cargo.toml crates/catalog-import/Cargo.toml
COPY crates/fuzzkit/Cargo.toml crates/fuzzkit/Cargo.toml
# The api crate's manifest names its test targets under tests/: stand-ins for those too.
RUN for c in store billing router accounts api mock-provider catalog-import fuzzkit; do \
        mkdir -p crates/$c/src && : > crates/$c/src/lib.rs; \
    done \
    && echo 'fn main() {}' > crates/api/src/main.rs \
    && echo 'fn main() {}' > crates/mock-provider/src/main.rs \
    && mkdir -p tests/e2e tests/faults tests/browser \
    && : > tests/e2e/main.rs && : > tests/faults/main.rs && : > tests/browser/main.rs \
    && cargo build --release --locked --bin infron --bin infron-mock-provider

# Then the sources. COPY keeps the files' old timestamps: touch them, or cargo would take the
# stand-ins' build for current.
COPY crates crates
COPY migrations migrations
COPY tests tests
COPY web web
COPY --from=web /src/web/node_modules web/node_modules
ENV INFRON_REQUIRE_WEB_ASSETS=1
RUN touch crates/*/src/lib.rs crates/*/src/main.rs \
    && cargo build --release --locked --bin infron --bin infron-mock-provider

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 infron
WORKDIR /app
COPY --from=build /src/target/release/infron /src/target/release/infron-mock-provider /usr/local/bin/
# The default catalog; docker-compose.yml mounts ./config over it so prices change without a
# rebuild (`docker compose kill -s HUP infron` reloads it).
COPY config config
USER infron
ENV INFRON_BIND=0.0.0.0:8080 INFRON_CATALOG=/app/config/catalog.toml
EXPOSE 8080
# No curl in the image: the binary probes its own /ready.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["infron", "healthcheck"]
ENTRYPOINT ["infron"]
CMD ["serve"]
